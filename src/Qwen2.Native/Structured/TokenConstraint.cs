namespace Qwen2.Native.Structured;

/// <summary>
/// One generation's JSON constraint over a vocabulary: the matcher state after the tokens so far, the check of a
/// sampled token, and the mask of every token when the sampled one is rejected. Not thread-safe: one per sequence.
/// </summary>
/// <remarks>
/// The sampler (TokenHistory.Sample) draws from the model's logits first; only a rejected draw costs a mask (rejected tokens set to
/// -infinity) and a second draw from the masked logits through the same sampler, so every setting (penalty,
/// temperature, top-k/p, min-p, seed) applies to the allowed tokens. For independent draws that is exactly sampling
/// from the masked distribution; greedy picks the best allowed token either way.
/// </remarks>
internal sealed class TokenConstraint
{
    private readonly TokenVocabulary _vocab;
    private readonly JsonGrammar _grammar;
    private readonly bool[] _stop;
    private readonly int[] _stopIds;
    private readonly List<Frame>[] _depth;
    private List<Frame> _state = [], _scratch = [];
    private float[]? _masked;

    public TokenConstraint(JsonGrammar grammar, TokenVocabulary vocab, IReadOnlyList<int> stopIds)
    {
        _grammar = grammar;
        _vocab = vocab;
        _stop = new bool[vocab.Size];
        foreach (int id in stopIds) if ((uint)id < (uint)vocab.Size) _stop[id] = true;
        _stopIds = stopIds.Where(id => (uint)id < (uint)vocab.Size).ToArray();
        _depth = new List<Frame>[vocab.MaxTokenBytes + 1];
        for (int i = 0; i < _depth.Length; i++) _depth[i] = [];
        grammar.Start(_state);
    }

    /// <summary>Sampled tokens the matcher accepted as drawn.</summary>
    public int Accepted { get; set; }

    /// <summary>Sampled tokens it rejected, each followed by a mask and a second draw.</summary>
    public int Masked { get; set; }

    /// <summary>The buffer a mask is written to, sized once for the vocabulary.</summary>
    public float[] MaskBuffer => _masked ??= new float[_vocab.Size];

    /// <summary>The value is complete and nothing may follow it: generation ends.</summary>
    public bool IsComplete => JsonGrammar.IsComplete(_state);

    /// <summary>The value could end here (a stop token is allowed).</summary>
    public bool CanEnd => JsonGrammar.CanEnd(_state);

    /// <summary>Whether <paramref name="token"/> may come next; the state does not change.</summary>
    public bool Allows(int token)
    {
        if ((uint)token >= (uint)_vocab.Size) return false;
        if (_stop[token]) return CanEnd;
        return Run(_vocab.Bytes[token], _scratch);
    }

    /// <summary>Advances past <paramref name="token"/> if it may come next.</summary>
    public bool TryAdvance(int token)
    {
        if ((uint)token >= (uint)_vocab.Size) return false;
        if (_stop[token])
        {
            if (!CanEnd) return false;
            _state.Clear();
            _state.Add(DoneFrame.Instance);
            return true;
        }
        if (!Run(_vocab.Bytes[token], _scratch)) return false;
        (_state, _scratch) = (_scratch, _state);
        return true;
    }

    private bool Run(byte[] bytes, List<Frame> result)
    {
        if (bytes.Length == 0) return false;
        var from = _state;
        for (int i = 0; i < bytes.Length; i++)
        {
            var to = i == bytes.Length - 1 ? result : _depth[(i & 1) + 1];
            JsonGrammar.Step(from, bytes[i], to);
            if (to.Count == 0) return false;
            from = to;
        }
        return true;
    }

    /// <summary>Writes <paramref name="logits"/> into <paramref name="masked"/> with every token the matcher rejects at -infinity.</summary>
    public void Mask(ReadOnlySpan<float> logits, Span<float> masked)
    {
        masked.Fill(float.NegativeInfinity);
        if (CanEnd)
            foreach (int id in _stopIds) masked[id] = logits[id];
        if (InPlainText(out int stringRoom, out int keyRoom))
        {
            // Inside a string: a plain token fits by its length; only the rest (quotes, escapes, split characters) run the matcher.
            var plain = _vocab.Plain;
            var chars = _vocab.PlainChars;
            foreach (int id in plain)
            {
                int c = chars[id];
                if (c <= stringRoom || c < keyRoom || (c == keyRoom && Allows(id))) masked[id] = logits[id];
            }
            Walk(_vocab.Special, _vocab.SpecialLcp, logits, masked);
        }
        else Walk(_vocab.Sorted, _vocab.SortedLcp, logits, masked);
    }

    /// <summary>
    /// Steps the matcher along <paramref name="ids"/> in byte order, reusing the state of the prefix a token shares with
    /// the one before and skipping every token that extends a prefix already rejected.
    /// </summary>
    private void Walk(int[] ids, int[] lcp, ReadOnlySpan<float> logits, Span<float> masked)
    {
        var bytes = _vocab.Bytes;
        int dead = int.MaxValue;
        for (int k = 0; k < ids.Length; k++)
        {
            int shared = lcp[k];
            if (shared >= dead) continue;
            dead = int.MaxValue;
            int id = ids[k];
            var b = bytes[id];
            for (int d = shared; d < b.Length; d++)
            {
                var to = _depth[d + 1];
                JsonGrammar.Step(d == 0 ? _state : _depth[d], b[d], to);
                if (to.Count == 0) { dead = d + 1; break; }
            }
            if (dead == int.MaxValue) masked[id] = logits[id];
        }
    }

    /// <summary>Whether every stack is inside a string's characters (no escape or split character pending), and how many characters each kind still has room for.</summary>
    private bool InPlainText(out int stringRoom, out int keyRoom)
    {
        stringRoom = keyRoom = -1;
        foreach (var f in _state)
        {
            if (f is StringFrame { Phase: StringPhase.Body } s) stringRoom = Math.Max(stringRoom, s.Room);
            else if (f is FreeKeyFrame { Need: 0 } k) keyRoom = Math.Max(keyRoom, k.Room);
            else return false;
        }
        return _state.Count > 0;
    }
}
