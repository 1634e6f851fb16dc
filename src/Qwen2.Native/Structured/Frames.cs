namespace Qwen2.Native.Structured;

/// <summary>
/// One level of a parse stack: what the matcher expects next inside one value. <see cref="Parent"/> is the container
/// waiting for this value (null at the root), so a frame is a whole stack. Frames are immutable records: a step makes
/// new ones and states share the rest, and record equality lets a state drop duplicate stacks.
/// </summary>
internal abstract record Frame(Frame? Parent, int Depth, JsonGrammar G)
{
    /// <summary>Consumes <paramref name="b"/>, adding the stacks that accept it to <paramref name="output"/>.</summary>
    public abstract void Step(byte b, List<Frame> output);

    /// <summary>A child value of this container has ended: add what follows it.</summary>
    public virtual void Resume(List<Frame> output) => throw new InvalidOperationException($"{GetType().Name} has no child value");

    /// <summary>The frames that begin a value of <paramref name="node"/> at <paramref name="depth"/>; alternatives that cannot finish within the depth bound are not started.</summary>
    public static void Push(GrammarNode node, Frame? parent, int depth, JsonGrammar g, List<Frame> output)
    {
        node = node.Resolve();
        if (depth + node.MinDepth > g.Limits.MaxDepth) return;
        switch (node)
        {
            case UnionNode u:
                foreach (var a in u.Alternatives) Push(a, parent, depth, g, output);
                break;
            case ObjectNode o: output.Add(new ObjectFrame(parent, depth, g, o)); break;
            case ArrayNode a: output.Add(new ArrayFrame(parent, depth, g, a)); break;
            case StringNode s: output.Add(new StringFrame(parent, depth, g, s.Min, s.Max)); break;
            case NumberNode n: output.Add(new NumberFrame(parent, depth, g, n)); break;
            case LiteralNode l: output.Add(new LiteralFrame(parent, depth, g, l)); break;
        }
    }

    /// <summary>This frame's value has ended: its container goes on (or, at the root, the value is complete).</summary>
    protected void Complete(List<Frame> output)
    {
        if (Parent is null) output.Add(DoneFrame.Instance);
        else Parent.Resume(output);
    }

    /// <summary>
    /// Whether <paramref name="b"/> begins a well-formed UTF-8 multi-byte character: how many bytes follow and the
    /// range of the next one (which rules out overlong forms, surrogates and code points past U+10FFFF).
    /// </summary>
    public static bool Utf8Lead(byte b, out int need, out byte lo, out byte hi)
    {
        (need, lo, hi) = b switch
        {
            >= 0xC2 and <= 0xDF => (1, (byte)0x80, (byte)0xBF),
            0xE0 => (2, (byte)0xA0, (byte)0xBF),
            0xED => (2, (byte)0x80, (byte)0x9F),
            >= 0xE1 and <= 0xEF => (2, (byte)0x80, (byte)0xBF),
            0xF0 => (3, (byte)0x90, (byte)0xBF),
            >= 0xF1 and <= 0xF3 => (3, (byte)0x80, (byte)0xBF),
            0xF4 => (3, (byte)0x80, (byte)0x8F),
            _ => (0, (byte)0, (byte)0),
        };
        return need > 0;
    }
}

/// <summary>The value is complete; nothing may follow.</summary>
internal sealed record DoneFrame() : Frame(null, 0, null!)
{
    public static readonly DoneFrame Instance = new();

    public override void Step(byte b, List<Frame> output) { }
}

internal enum ObjectPhase { Open, First, After, Comma, KeyStart, Key, Colon, ColonSpace, Value, FreeKey }

/// <summary>Extra keys an object has written, which later ones must not repeat.</summary>
internal sealed record KeyList(byte[] Key, KeyList? Next);

/// <summary>
/// An object: declared properties in schema order (<see cref="Next"/> is the first not yet passed; an optional one may
/// be skipped, a required one not), then extra keys while the schema allows them and the bound is not reached.
/// </summary>
internal sealed record ObjectFrame(Frame? Parent, int Depth, JsonGrammar G, ObjectNode Node) : Frame(Parent, Depth, G)
{
    public ObjectPhase Phase { get; init; }
    public int Next { get; init; }
    public int Extra { get; init; }
    public KeyList? Keys { get; init; }
    public int[]? Candidates { get; init; }
    public int Pos { get; init; }
    public int Chosen { get; init; } = -1;
    public byte[]? PendingKey { get; init; }

    private bool RequiredLeft => Node.FirstRequired[Next] < Node.Properties.Length;

    private bool Fits(GrammarNode value) => Depth + 1 + value.Resolve().MinDepth <= G.Limits.MaxDepth;

    private bool FreeAllowed => Node.Additional is { } a && Extra < Node.MaxAdditional && !RequiredLeft && Fits(a);

    private int[] KeyCandidates()
    {
        var props = Node.Properties;
        int last = Math.Min(Node.FirstRequired[Next], props.Length - 1);
        var list = new List<int>();
        for (int j = Next; j <= last; j++)
            if (Fits(props[j].Value)) list.Add(j);
        return list.ToArray();
    }

    public override void Step(byte b, List<Frame> output)
    {
        switch (Phase)
        {
            case ObjectPhase.Open:
                if (b == '{') output.Add(this with { Phase = ObjectPhase.First });
                break;
            case ObjectPhase.First:
            case ObjectPhase.After:
                if (b == '}' && !RequiredLeft) Complete(output);
                else if (b == '"' && Phase == ObjectPhase.First) StartKey(output);
                else if (b == ',' && Phase == ObjectPhase.After && (FreeAllowed || KeyCandidates().Length > 0)) output.Add(this with { Phase = ObjectPhase.Comma });
                break;
            case ObjectPhase.Comma:
            case ObjectPhase.KeyStart:
                if (b == '"') StartKey(output);
                else if (b == ' ' && Phase == ObjectPhase.Comma) output.Add(this with { Phase = ObjectPhase.KeyStart });
                break;
            case ObjectPhase.Key:
                int[]? longer = null;
                int n = 0;
                foreach (int c in Candidates!)
                {
                    var key = Node.Properties[c].Key;
                    if (key.Length <= Pos || key[Pos] != b) continue;
                    if (key.Length == Pos + 1) output.Add(this with { Phase = ObjectPhase.Colon, Chosen = c, Candidates = null, Pos = 0 });
                    else (longer ??= new int[Candidates!.Length])[n++] = c;
                }
                if (n > 0) output.Add(this with { Candidates = longer![..n], Pos = Pos + 1 });
                break;
            case ObjectPhase.Colon:
                if (b == ':')
                {
                    output.Add(this with { Phase = ObjectPhase.ColonSpace });
                    PushValue(output);
                }
                break;
            case ObjectPhase.ColonSpace:
                if (b == ' ') PushValue(output);
                break;
        }
    }

    private void StartKey(List<Frame> output)
    {
        var candidates = KeyCandidates();
        if (candidates.Length > 0) output.Add(this with { Phase = ObjectPhase.Key, Candidates = candidates, Pos = 1 });
        if (FreeAllowed) output.Add(new FreeKeyFrame(this with { Phase = ObjectPhase.FreeKey }, Depth, G));
    }

    private void PushValue(List<Frame> output)
    {
        var value = Chosen >= 0 ? Node.Properties[Chosen].Value : Node.Additional!;
        Push(value, this with { Phase = ObjectPhase.Value }, Depth + 1, G, output);
    }

    public override void Resume(List<Frame> output) =>
        output.Add(Chosen >= 0
            ? this with { Phase = ObjectPhase.After, Next = Chosen + 1, Chosen = -1 }
            : this with { Phase = ObjectPhase.After, Extra = Extra + 1, Keys = new KeyList(PendingKey!, Keys), PendingKey = null });

    /// <summary>An extra key has been read (its UTF-8 without quotes).</summary>
    public void ResumeKey(byte[] key, List<Frame> output) =>
        output.Add(this with { Phase = ObjectPhase.Colon, Chosen = -1, PendingKey = key });

    /// <summary>Whether an extra key may not be <paramref name="key"/>: a declared name or a key already written.</summary>
    public bool Forbids(ReadOnlySpan<byte> key)
    {
        foreach (var name in Node.DeclaredNames) if (key.SequenceEqual(name)) return true;
        for (var k = Keys; k is not null; k = k.Next) if (key.SequenceEqual(k.Key)) return true;
        return false;
    }
}

/// <summary>
/// An extra key's characters after its opening quote: plain characters only (no escapes), at least one, at most
/// <see cref="JsonLimits.MaxKeyLength"/>, never a name the object forbids (checked on the closing quote, and on the
/// character that reaches the bound, so the key can always be finished).
/// </summary>
internal sealed record FreeKeyFrame(ObjectFrame Owner, int Depth, JsonGrammar G) : Frame(Owner, Depth, G)
{
    public int Chars { get; init; }
    public byte[] Bytes { get; init; } = [];
    public int Need { get; init; }
    public byte Lo { get; init; }
    public byte Hi { get; init; }

    public int Room => G.Limits.MaxKeyLength - Chars;

    public override void Step(byte b, List<Frame> output)
    {
        int max = G.Limits.MaxKeyLength;
        if (Need > 0)
        {
            if (b < Lo || b > Hi) return;
            var bytes = Append(b);
            if (Need == 1 && Chars == max && Owner.Forbids(bytes)) return;
            output.Add(this with { Bytes = bytes, Need = Need - 1, Lo = 0x80, Hi = 0xBF });
            return;
        }
        if (b == '"')
        {
            if (Chars > 0 && !Owner.Forbids(Bytes)) Owner.ResumeKey(Bytes, output);
            return;
        }
        if (b < 0x20 || b == '\\' || Chars >= max) return;
        if (b < 0x80)
        {
            var bytes = Append(b);
            if (Chars + 1 == max && Owner.Forbids(bytes)) return;
            output.Add(this with { Bytes = bytes, Chars = Chars + 1 });
        }
        else if (Utf8Lead(b, out int need, out byte lo, out byte hi))
            output.Add(this with { Bytes = Append(b), Chars = Chars + 1, Need = need, Lo = lo, Hi = hi });
    }

    private byte[] Append(byte b)
    {
        var bytes = new byte[Bytes.Length + 1];
        Bytes.CopyTo(bytes, 0);
        bytes[^1] = b;
        return bytes;
    }
}

internal enum StringPhase { Open, Body, Utf8, Escape, Hex }

/// <summary>A string value with its length bounds in code points (an escape counts as the one character it stands for).</summary>
internal sealed record StringFrame(Frame? Parent, int Depth, JsonGrammar G, int Min, int Max) : Frame(Parent, Depth, G)
{
    public StringPhase Phase { get; init; }
    public int Chars { get; init; }
    public int Need { get; init; }
    public byte Lo { get; init; }
    public byte Hi { get; init; }
    public int HexDigits { get; init; }
    public int HexValue { get; init; }

    public int Room => Max - Chars;

    public override void Step(byte b, List<Frame> output)
    {
        switch (Phase)
        {
            case StringPhase.Open:
                if (b == '"') output.Add(this with { Phase = StringPhase.Body });
                break;
            case StringPhase.Body:
                if (b == '"') { if (Chars >= Min) Complete(output); }
                else if (b < 0x20 || Chars >= Max) { }
                else if (b == '\\') output.Add(this with { Phase = StringPhase.Escape, Chars = Chars + 1 });
                else if (b < 0x80) output.Add(this with { Chars = Chars + 1 });
                else if (Utf8Lead(b, out int need, out byte lo, out byte hi))
                    output.Add(this with { Phase = StringPhase.Utf8, Chars = Chars + 1, Need = need, Lo = lo, Hi = hi });
                break;
            case StringPhase.Utf8:
                if (b >= Lo && b <= Hi)
                    output.Add(Need == 1 ? this with { Phase = StringPhase.Body, Need = 0 } : this with { Need = Need - 1, Lo = 0x80, Hi = 0xBF });
                break;
            case StringPhase.Escape:
                if (b is (byte)'"' or (byte)'\\' or (byte)'/' or (byte)'b' or (byte)'f' or (byte)'n' or (byte)'r' or (byte)'t')
                    output.Add(this with { Phase = StringPhase.Body });
                else if (b == 'u') output.Add(this with { Phase = StringPhase.Hex, HexDigits = 0, HexValue = 0 });
                break;
            case StringPhase.Hex:
                int h = HexDigit(b);
                if (h < 0) break;
                int v = HexValue * 16 + h, digits = HexDigits + 1;
                // A surrogate escape would need its pair to be valid text: refuse them (U+D800 to U+DFFF) outright.
                if (digits == 2 && v >= 0xD8 && v <= 0xDF) break;
                output.Add(digits == 4 ? this with { Phase = StringPhase.Body, HexDigits = 0, HexValue = 0 } : this with { HexDigits = digits, HexValue = v });
                break;
        }
    }

    private static int HexDigit(byte b) => b switch
    {
        >= (byte)'0' and <= (byte)'9' => b - '0',
        >= (byte)'a' and <= (byte)'f' => b - 'a' + 10,
        >= (byte)'A' and <= (byte)'F' => b - 'A' + 10,
        _ => -1,
    };
}

/// <summary>One of a literal node's texts, matched byte by byte (<see cref="Candidates"/>: those still matching; null: all).</summary>
internal sealed record LiteralFrame(Frame? Parent, int Depth, JsonGrammar G, LiteralNode Node) : Frame(Parent, Depth, G)
{
    public int Pos { get; init; }
    public int[]? Candidates { get; init; }

    public override void Step(byte b, List<Frame> output)
    {
        var values = Node.Values;
        int count = Candidates?.Length ?? values.Length, n = 0;
        int[]? longer = null;
        bool ended = false;
        for (int i = 0; i < count; i++)
        {
            int c = Candidates is null ? i : Candidates[i];
            var v = values[c];
            if (v.Length <= Pos || v[Pos] != b) continue;
            if (v.Length == Pos + 1) ended = true;
            else (longer ??= new int[count])[n++] = c;
        }
        if (n > 0) output.Add(this with { Pos = Pos + 1, Candidates = longer![..n] });
        if (ended) Complete(output);
    }
}

internal enum ArrayPhase { Open, First, After, Comma, Item }

/// <summary>An array of <see cref="ArrayNode.Items"/> with its item bounds.</summary>
internal sealed record ArrayFrame(Frame? Parent, int Depth, JsonGrammar G, ArrayNode Node) : Frame(Parent, Depth, G)
{
    public ArrayPhase Phase { get; init; }
    public int Count { get; init; }

    private bool CanAdd => Count < Node.Max && Depth + 1 + Node.Items.Resolve().MinDepth <= G.Limits.MaxDepth;

    public override void Step(byte b, List<Frame> output)
    {
        switch (Phase)
        {
            case ArrayPhase.Open:
                if (b != '[') break;
                if (Node.Min == 0) output.Add(this with { Phase = ArrayPhase.First });
                if (CanAdd) PushItem(output);
                break;
            case ArrayPhase.First:
            case ArrayPhase.After:
                if (b == ']' && Count >= Node.Min) Complete(output);
                else if (b == ',' && Phase == ArrayPhase.After && CanAdd)
                {
                    output.Add(this with { Phase = ArrayPhase.Comma });
                    PushItem(output);
                }
                break;
            case ArrayPhase.Comma:
                if (b == ' ') PushItem(output);
                break;
        }
    }

    private void PushItem(List<Frame> output) => Push(Node.Items, this with { Phase = ArrayPhase.Item }, Depth + 1, G, output);

    public override void Resume(List<Frame> output) => output.Add(this with { Phase = ArrayPhase.After, Count = Count + 1 });
}
