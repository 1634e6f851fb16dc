using System.Buffers;
using Qwen2.Kernels;

namespace Qwen2.Native;

/// <summary>Quantizes rows of a matrix in any stored type (widened to float32 one row at a time), in parallel over rows.</summary>
internal static unsafe class MatrixQuantizer
{
    /// <summary>
    /// Quantizes rows [<paramref name="firstRow"/>, <paramref name="firstRow"/> + <paramref name="rows"/>) of
    /// <paramref name="source"/> to <paramref name="target"/> into <paramref name="destination"/> (rows back to back).
    /// The bytes do not depend on <paramref name="threads"/>.
    /// </summary>
    /// <exception cref="CheckpointException">A value cannot be quantized (NaN or infinite); names <paramref name="file"/>, <paramref name="tensor"/> and the row.</exception>
    public static void QuantizeRows(WeightMatrix source, int firstRow, int rows, WeightType target, byte* destination, int threads,
        string file, string tensor, CancellationToken cancellationToken = default)
    {
        long rowBytes = WeightTypes.ByteCount(target, source.Cols);
        int cols = source.Cols;
        var options = new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, threads), CancellationToken = cancellationToken };
        // Chunks of rows, so a worker rents its scratch row once per chunk rather than once per row.
        int chunk = Math.Max(1, Math.Min(64, rows / (4 * options.MaxDegreeOfParallelism)));
        int chunks = (rows + chunk - 1) / chunk;
        try
        {
            Parallel.For(0, chunks, options, c => Chunk(c));
        }
        catch (AggregateException e) when (e.InnerExceptions[0] is CheckpointException first)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(first);
        }

        void Chunk(int c)
        {
            float[] row = ArrayPool<float>.Shared.Rent(cols);
            try
            {
                var x = row.AsSpan(0, cols);
                for (int r = c * chunk; r < Math.Min(rows, (c + 1) * chunk); r++)
                {
                    source.ReadRow(firstRow + r, x);
                    try
                    {
                        WeightQuantizer.Quantize(target, x, new Span<byte>(destination + r * rowBytes, checked((int)rowBytes)));
                    }
                    catch (ArgumentException e)
                    {
                        throw new CheckpointException(file, $"row {firstRow + r} cannot be quantized to {target}: {e.Message}", tensor, inner: e);
                    }
                }
            }
            finally
            {
                ArrayPool<float>.Shared.Return(row);
            }
        }
    }
}
