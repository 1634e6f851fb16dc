namespace Qwen2.Native;

/// <summary>Logits of a forward call: <see cref="Rows"/> rows of <see cref="VocabSize"/> float32 scores.</summary>
public sealed class Logits
{
    private readonly float[] _values;

    internal Logits(float[] values, int rows, int vocabSize)
    {
        _values = values; Rows = rows; VocabSize = vocabSize;
    }

    /// <summary>Number of rows (input tokens, or 1 for <see cref="LogitsSelection.Last"/>).</summary>
    public int Rows { get; }

    /// <summary>Scores per row.</summary>
    public int VocabSize { get; }

    /// <summary>Row <paramref name="row"/>.</summary>
    public ReadOnlySpan<float> this[int row] =>
        (uint)row < (uint)Rows ? _values.AsSpan(row * VocabSize, VocabSize) : throw new ArgumentOutOfRangeException(nameof(row), row, $"there are {Rows} rows");

    /// <summary>All rows, row-major.</summary>
    public ReadOnlySpan<float> Values => _values;

    /// <summary>The last row (the next-token distribution).</summary>
    public ReadOnlySpan<float> Last => this[Rows - 1];

    /// <summary>The highest-scoring token of row <paramref name="row"/> (the first on ties, as torch.argmax).</summary>
    public int ArgMax(int row) => Kernels.Activations.ArgMax(this[row]);
}
