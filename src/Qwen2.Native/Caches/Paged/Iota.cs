namespace Qwen2.Native;

/// <summary>0, 1, 2, …: the positions of a cache that never evicts, shared by every paged sequence.</summary>
internal static class Iota
{
    private static int[] s_values = Enumerable.Range(0, 4096).ToArray();
    private static readonly object s_lock = new();

    public static ReadOnlySpan<int> Get(int count)
    {
        var values = Volatile.Read(ref s_values);
        if (values.Length < count)
            lock (s_lock)
            {
                values = s_values;
                if (values.Length < count)
                    Volatile.Write(ref s_values, values = Enumerable.Range(0, Math.Max(count, 2 * values.Length)).ToArray());
            }
        return values.AsSpan(0, count);
    }
}
