namespace Qwen2.Kernels;

/// <summary>
/// A read-only row-major matrix [<see cref="Rows"/>, <see cref="Cols"/>] of <see cref="Type"/> elements at a fixed
/// address (usually a memory-mapped file). Rows are output features, columns input features, as in PyTorch's Linear.
/// </summary>
/// <remarks>The owner of the memory keeps it alive and unmoved while the view is used.</remarks>
public readonly unsafe struct WeightMatrix
{
    /// <summary>Address of element [0, 0].</summary>
    public readonly byte* Data;
    /// <summary>Number of rows (output features).</summary>
    public readonly int Rows;
    /// <summary>Number of columns (input features).</summary>
    public readonly int Cols;
    /// <summary>Format as stored.</summary>
    public readonly WeightType Type;

    /// <summary>
    /// Wraps memory that holds <paramref name="rows"/> x <paramref name="cols"/> elements of <paramref name="type"/>;
    /// <paramref name="cols"/> must be a multiple of the type's <see cref="WeightTypes.BlockSize"/> (rows hold whole blocks).
    /// </summary>
    public WeightMatrix(byte* data, int rows, int cols, WeightType type)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(cols);
        int block = WeightTypes.BlockSize(type);
        if (cols % block != 0) throw new ArgumentException($"{cols} columns are not a whole number of {type} blocks of {block}", nameof(cols));
        if (data == null && (long)rows * cols > 0) throw new ArgumentNullException(nameof(data));
        Data = data; Rows = rows; Cols = cols; Type = type;
    }

    /// <summary>Bytes between the starts of two consecutive rows: the row's blocks times <see cref="WeightTypes.BlockBytes"/>.</summary>
    public long RowBytes => WeightTypes.ByteCount(Type, Cols);

    /// <summary>Bytes the whole matrix occupies.</summary>
    public long ByteLength => RowBytes * Rows;

    /// <summary>The raw bytes of row <paramref name="row"/>.</summary>
    public ReadOnlySpan<byte> RowBytesSpan(int row)
    {
        if ((uint)row >= (uint)Rows) throw new ArgumentOutOfRangeException(nameof(row), row, $"matrix has {Rows} rows");
        return new ReadOnlySpan<byte>(Data + row * RowBytes, checked((int)RowBytes));
    }

    /// <summary>Widens row <paramref name="row"/> into float32 (an embedding lookup).</summary>
    public void ReadRow(int row, Span<float> destination)
    {
        if (destination.Length != Cols) throw new ArgumentException($"destination has {destination.Length} elements, row has {Cols}", nameof(destination));
        WeightTypes.ToSingle(Type, RowBytesSpan(row), destination);
    }
}
