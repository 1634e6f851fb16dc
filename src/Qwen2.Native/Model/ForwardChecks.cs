namespace Qwen2.Native;

/// <summary>What a forward call checks before anything changes: ids, the logits' room, and that each cache fits the model.</summary>
internal static class ForwardChecks
{
    public static void Ids(Qwen2Config c, ReadOnlySpan<int> ids)
    {
        if (ids.IsEmpty) throw new ArgumentException("inputIds is empty; a forward call needs at least one token", "inputIds");
        for (int i = 0; i < ids.Length; i++)
            if ((uint)ids[i] >= (uint)c.VocabSize)
                throw new ArgumentOutOfRangeException("inputIds", ids[i], $"token id at index {i} is {ids[i]}; this model's ids run from 0 to {c.VocabSize - 1}");
    }

    /// <summary>Ids, the output's room (rows of <paramref name="width"/>: the vocabulary, or the hidden size), and every cache: it belongs to this model and appears once.</summary>
    public static void Call(Qwen2Config c, ReadOnlySpan<int> ids, ReadOnlySpan<BatchSlice> batch, int outputLength, int width, string output)
    {
        Ids(c, ids);
        long rows = 0;
        foreach (var seq in batch) rows += seq.Rows;
        if (outputLength < rows * width)
            throw new ArgumentException($"{output} holds {outputLength} floats; {rows} rows of {width} are needed", output);
        for (int i = 0; i < batch.Length; i++)
        {
            var cache = batch[i].Cache;
            if (cache is null) continue;
            for (int j = 0; j < i; j++)
                if (batch[j].Cache is { } other && (other == cache || other[0] == cache[0]))
                    throw new ArgumentException($"inputs {j} and {i} share one cache; each sequence may appear once in a batch", "inputs");
            Fits(c, cache);
        }
    }

    private static void Fits(Qwen2Config c, PastKeyValues cache)
    {
        if (cache.Layers != c.NumHiddenLayers)
            throw new ArgumentException($"the cache has {cache.Layers} layers, this model {c.NumHiddenLayers}; it belongs to another model", "pastKeyValues");
        for (int i = 0; i < cache.Layers; i++)
        {
            var l = cache[i];
            if (l.KvHeads != c.NumKeyValueHeads || l.HeadDim != c.HeadDim)
                throw new ArgumentException($"layer {i}'s cache holds {l.KvHeads} kv heads x {l.HeadDim}, this model {c.NumKeyValueHeads} x {c.HeadDim}; it belongs to another model", "pastKeyValues");
            if (l.Position != cache.Position)
                throw new ArgumentException($"layer {i}'s cache is at position {l.Position}, layer 0's at {cache.Position}", "pastKeyValues");
        }
    }
}
