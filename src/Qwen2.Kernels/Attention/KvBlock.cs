namespace Qwen2.Kernels;

/// <summary>
/// Keys and values of some tokens with each token's absolute position. Stored either token-major in two spans as
/// [count, kvHeads, headDim], or (inside the engine) in fixed-size pages, as a paged cache holds them.
/// </summary>
public readonly unsafe ref struct KvBlock
{
    /// <summary>Keys, [Count, kvHeads, headDim]; empty for a paged block.</summary>
    public readonly ReadOnlySpan<float> Keys;
    /// <summary>Values, [Count, kvHeads, headDim]; empty for a paged block.</summary>
    public readonly ReadOnlySpan<float> Values;
    /// <summary>Absolute position of each token.</summary>
    public readonly ReadOnlySpan<int> Positions;

    // The paged form: token k's keys start at Pages[k >> PageShift] + KeyOffset + (k & (2^PageShift - 1)) * RowFloats
    // floats, its values likewise at ValueOffset. The pages must stay pinned while the block is in use.
    internal readonly ReadOnlySpan<nint> Pages;
    internal readonly nint KeyOffset, ValueOffset;
    internal readonly int PageShift, RowFloats;

    /// <summary>Wraps keys, values and positions of <c>positions.Length</c> tokens.</summary>
    public KvBlock(ReadOnlySpan<float> keys, ReadOnlySpan<float> values, ReadOnlySpan<int> positions)
    {
        Keys = keys; Values = values; Positions = positions;
    }

    /// <summary>A paged block: <paramref name="pages"/> are addresses of pinned memory, each page holding 2^<paramref name="pageShift"/> tokens.</summary>
    internal KvBlock(ReadOnlySpan<nint> pages, nint keyOffset, nint valueOffset, int pageShift, int rowFloats, ReadOnlySpan<int> positions)
    {
        if (pages.Length < (positions.Length + (1 << pageShift) - 1) >> pageShift)
            throw new ArgumentException($"{pages.Length} pages of {1 << pageShift} tokens cannot hold {positions.Length}", nameof(pages));
        Pages = pages; KeyOffset = keyOffset; ValueOffset = valueOffset; PageShift = pageShift; RowFloats = rowFloats; Positions = positions;
    }

    /// <summary>Number of tokens.</summary>
    public int Count => Positions.Length;

    /// <summary>Whether the keys and values sit in pages rather than in <see cref="Keys"/> and <see cref="Values"/>.</summary>
    public bool IsPaged => !Pages.IsEmpty;

    /// <summary>The keys of token <paramref name="index"/> (<paramref name="rowFloats"/> = kvHeads × headDim floats).</summary>
    public ReadOnlySpan<float> KeyRow(int index, int rowFloats) => Row(index, rowFloats, Keys, KeyOffset);

    /// <summary>The values of token <paramref name="index"/> (<paramref name="rowFloats"/> = kvHeads × headDim floats).</summary>
    public ReadOnlySpan<float> ValueRow(int index, int rowFloats) => Row(index, rowFloats, Values, ValueOffset);

    private ReadOnlySpan<float> Row(int index, int rowFloats, ReadOnlySpan<float> flat, nint offset)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Count);
        if (!IsPaged) return flat.Slice(index * rowFloats, rowFloats);
        if (rowFloats != RowFloats) throw new ArgumentException($"this block's rows hold {RowFloats} floats", nameof(rowFloats));
        return new ReadOnlySpan<float>((float*)Pages[index >> PageShift] + offset + (nint)(index & ((1 << PageShift) - 1)) * rowFloats, rowFloats);
    }
}
