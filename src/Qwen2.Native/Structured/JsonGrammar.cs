namespace Qwen2.Native.Structured;

/// <summary>
/// A compiled schema and the byte-level matcher over it. A matcher state is the list of parse stacks still alive (a
/// union follows every alternative at once, as llama.cpp's grammar sampler keeps several stacks); each stack is an
/// immutable chain of <see cref="Frame"/>s, so states share their tails and a step never copies a stack.
/// </summary>
/// <remarks>
/// The text it accepts is compact JSON: no whitespace except at most one space after ':' and after ',' (bounded, so a
/// model cannot loop on blanks); numbers without exponents, at most 15 digits before and after the point (15 significant
/// digits in all where bounds apply, each digit taken only if the value can still end within them); strings of
/// well-formed UTF-8 without raw control characters, with the JSON escapes (\uXXXX for any code point outside
/// the surrogates); object properties in schema order, then any extra keys (plain characters, never a declared name or
/// a repeat).
/// </remarks>
internal sealed class JsonGrammar
{
    public JsonGrammar(GrammarNode root, JsonLimits limits)
    {
        Root = root;
        Limits = limits;
    }

    public GrammarNode Root { get; }
    public JsonLimits Limits { get; }

    /// <summary>The state before the first byte.</summary>
    public void Start(List<Frame> state)
    {
        state.Clear();
        Frame.Push(Root, null, 0, this, state);
    }

    /// <summary>Advances every stack of <paramref name="from"/> by <paramref name="b"/> into <paramref name="to"/> (cleared first); empty: rejected.</summary>
    public static void Step(List<Frame> from, byte b, List<Frame> to)
    {
        to.Clear();
        foreach (var f in from) f.Step(b, to);
        if (to.Count > 1) Dedupe(to);
    }

    /// <summary>Whether the value may end here (some stack is complete).</summary>
    public static bool CanEnd(List<Frame> state)
    {
        foreach (var f in state) if (f is DoneFrame) return true;
        return false;
    }

    /// <summary>Whether the value has ended and nothing may follow.</summary>
    public static bool IsComplete(List<Frame> state)
    {
        if (state.Count == 0) return false;
        foreach (var f in state) if (f is not DoneFrame) return false;
        return true;
    }

    /// <summary>Whether <paramref name="text"/> is a whole value of this grammar.</summary>
    public bool AcceptsWhole(byte[] text)
    {
        List<Frame> a = [], b = [];
        Start(a);
        foreach (byte c in text)
        {
            Step(a, c, b);
            (a, b) = (b, a);
            if (a.Count == 0) return false;
        }
        return CanEnd(a);
    }

    // Several alternatives can reach the same place (two unions' ends, Done twice); identical stacks are kept once so
    // the state does not grow with the output.
    private static void Dedupe(List<Frame> frames)
    {
        int doneAt = -1;
        for (int i = frames.Count - 1; i >= 0; i--)
        {
            if (frames[i] is not DoneFrame) continue;
            if (doneAt >= 0) frames.RemoveAt(doneAt);
            doneAt = i;
        }
        if (frames.Count > 32)
            for (int i = frames.Count - 1; i > 0; i--)
                for (int j = 0; j < i; j++)
                    if (frames[j].Equals(frames[i])) { frames.RemoveAt(i); break; }
    }
}
