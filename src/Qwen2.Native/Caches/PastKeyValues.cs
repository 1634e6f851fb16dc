using System.Collections;

namespace Qwen2.Native;

/// <summary>
/// The caches of every layer of one sequence, as Hugging Face's <c>past_key_values</c>: pass it back into
/// <see cref="Qwen2Model.Forward(ReadOnlySpan{int}, PastKeyValues?, bool, LogitsSelection)"/> to continue the sequence.
/// Not thread-safe: one sequence, one caller at a time.
/// </summary>
public sealed class PastKeyValues : IEnumerable<IKvCache>
{
    private readonly IKvCache[] _layers;

    /// <summary>Wraps one cache per layer; all must have seen the same tokens.</summary>
    public PastKeyValues(IEnumerable<IKvCache> layers)
    {
        ArgumentNullException.ThrowIfNull(layers);
        _layers = layers.ToArray();
        if (_layers.Length == 0) throw new ArgumentException("a cache needs at least one layer", nameof(layers));
        for (int i = 0; i < _layers.Length; i++)
        {
            if (_layers[i] is null) throw new ArgumentException($"layer {i}'s cache is null", nameof(layers));
            if (_layers[i].Position != _layers[0].Position || _layers[i].Count != _layers[0].Count)
                throw new ArgumentException($"layer {i}'s cache has seen {_layers[i].Position} tokens, layer 0's {_layers[0].Position}", nameof(layers));
        }
        Paged = PagedSequence.Viewed(_layers);
    }

    /// <summary>The paged sequence these layers view, when they are exactly one sequence's layers in order: its block
    /// pool then reserves a step's room for all of them at once (<see cref="CacheReservation"/>).</summary>
    internal PagedSequence? Paged { get; }

    /// <summary>Creates ring-buffer caches for <paramref name="layers"/> layers.</summary>
    public static PastKeyValues CreateRing(int layers, int capacity, int kvHeads, int headDim, CacheOptions? options = null) =>
        new(Enumerable.Range(0, layers).Select(_ => (IKvCache)new RingKvCache(capacity, kvHeads, headDim, options)));

    /// <summary>Absolute position of the next token (tokens seen); RoPE positions come from here.</summary>
    public int Position => _layers[0].Position;

    /// <summary>Tokens held now.</summary>
    public int Count => _layers[0].Count;

    /// <summary>Tokens each layer can hold.</summary>
    public int Capacity => _layers[0].Capacity;

    /// <summary>Number of layers.</summary>
    public int Layers => _layers.Length;

    /// <summary>Layer <paramref name="index"/>'s cache.</summary>
    public IKvCache this[int index] => _layers[index];

    /// <summary>Whether every layer can take <paramref name="tokens"/> more (a full ring that does not slide cannot).</summary>
    public bool HasRoomFor(int tokens)
    {
        foreach (var l in _layers)
            if (!l.HasRoomFor(tokens)) return false;
        return true;
    }

    /// <summary>Throws <see cref="CacheFullException"/> when a layer cannot take <paramref name="tokens"/> more; changes nothing.</summary>
    public void EnsureRoomFor(int tokens)
    {
        foreach (var l in _layers) l.EnsureRoomFor(tokens);
    }

    /// <summary>Forgets every token in every layer.</summary>
    public void Reset()
    {
        foreach (var l in _layers) l.Reset();
    }

    /// <summary>Forgets the <paramref name="tokens"/> most recent tokens in every layer (for example a rejected draft).</summary>
    public void Rewind(int tokens)
    {
        if (tokens < 0 || tokens > Count) throw new ArgumentOutOfRangeException(nameof(tokens), tokens, $"can rewind between 0 and the {Count} tokens held");
        foreach (var l in _layers) l.Rewind(tokens);
    }

    /// <inheritdoc/>
    public IEnumerator<IKvCache> GetEnumerator() => ((IEnumerable<IKvCache>)_layers).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => _layers.GetEnumerator();
}
