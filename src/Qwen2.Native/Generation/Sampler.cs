using System.Numerics.Tensors;
using System.Security.Cryptography;
using Qwen2.Kernels;

namespace Qwen2.Native.Generation;

/// <summary>
/// Picks the next token from a row of logits by <see cref="SamplingOptions"/>. Scratch buffers are sized once for the
/// vocabulary, so a step allocates nothing. Not thread-safe: one sampler per sequence.
/// </summary>
public sealed class Sampler
{
    private readonly SamplingOptions _options;
    private readonly float[] _work;
    private readonly float[] _keys;
    private readonly int[] _ids;
    private readonly double[] _weights;
    private readonly bool[] _penalized;
    private Xoshiro256 _rng;

    /// <summary>Creates a sampler for a vocabulary of <paramref name="vocabSize"/> tokens.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range (the parameter name says which).</exception>
    public Sampler(SamplingOptions options, int vocabSize)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        ArgumentOutOfRangeException.ThrowIfLessThan(vocabSize, 1);
        _options = options;
        _work = new float[vocabSize];
        _keys = new float[vocabSize];
        _ids = new int[vocabSize];
        _weights = new double[vocabSize];
        _penalized = new bool[vocabSize];
        Seed = options.Seed ?? BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(8));
        _rng = new Xoshiro256(Seed);
    }

    /// <summary>The options in use.</summary>
    public SamplingOptions Options => _options;

    /// <summary>The seed of the random draws (the given one, or the fresh one chosen when none was given).</summary>
    public ulong Seed { get; }

    /// <summary>
    /// Picks a token from <paramref name="logits"/>. <paramref name="context"/> lists the distinct token ids already in
    /// the sequence (prompt and generated), for the repetition penalty; order and duplicates do not matter.
    /// </summary>
    public int Sample(ReadOnlySpan<float> logits, ReadOnlySpan<int> context)
    {
        int vocab = _work.Length;
        if (logits.Length != vocab) throw new ArgumentException($"logits has {logits.Length} entries; this sampler was made for a vocabulary of {vocab}", nameof(logits));
        var o = _options;
        var x = _work.AsSpan();
        logits.CopyTo(x);
        if (o.RepetitionPenalty != 1) ApplyRepetitionPenalty(x, context, (float)o.RepetitionPenalty);
        if (o.IsGreedy) return Activations.ArgMax(x);
        // Division, not multiplication by 1/T, as Hugging Face's TemperatureLogitsWarper does.
        if (o.Temperature != 1) TensorPrimitives.Divide(x, (float)o.Temperature, x);

        int n = Candidates(x);
        // Unnormalized probabilities, once: every filter below and the draw read them.
        float max = _keys[0];
        double total = 0;
        for (int i = 0; i < n; i++) total += _weights[i] = Math.Exp(_keys[i] - max);

        // Top-p: keep a token while the mass of the tokens ranked above it is below p (Hugging Face's rule, read from the top).
        if (o.TopP < 1)
        {
            double above = 0;
            int keep = 0;
            while (keep < n && above < o.TopP * total) above += _weights[keep++];
            n = Math.Max(keep, 1);
        }
        // Min-p compares with the top token, which every filter keeps, so renormalizing first changes nothing.
        if (o.MinP > 0)
        {
            double floor = Math.Log(o.MinP); // p_i < min_p * p_max  <=>  logit_i - max < log(min_p)
            int keep = 1;
            while (keep < n && _keys[keep] - max >= floor) keep++;
            n = keep;
        }

        double mass = 0;
        for (int i = 0; i < n; i++) mass += _weights[i];
        double u = _rng.NextDouble() * mass, acc = 0;
        for (int i = 0; i < n; i++)
        {
            acc += _weights[i];
            if (u < acc) return _ids[i];
        }
        return _ids[n - 1]; // rounding left u at the very top of the mass
    }

    private void ApplyRepetitionPenalty(Span<float> x, ReadOnlySpan<int> context, float penalty)
    {
        foreach (int id in context)
            if ((uint)id >= (uint)x.Length) throw new ArgumentOutOfRangeException(nameof(context), id, $"context token {id} is outside the vocabulary [0, {x.Length})");
        // Each distinct id is penalized once, however often it occurs.
        foreach (int id in context)
        {
            if (_penalized[id]) continue;
            _penalized[id] = true;
            float v = x[id];
            x[id] = v < 0 ? v * penalty : v / penalty;
        }
        foreach (int id in context) _penalized[id] = false;
    }

    /// <summary>
    /// Fills <see cref="_keys"/>/<see cref="_ids"/> with the candidate logits in descending order (ties: lower id first) and returns how many
    /// there are: the top-k (every token tied with the k-th kept, as Hugging Face does) or every finite-or-infinite token.
    /// </summary>
    private int Candidates(Span<float> x)
    {
        int vocab = x.Length, k = _options.TopK, n = 0;
        float threshold = float.NegativeInfinity;
        if (k > 0 && k < vocab)
        {
            x.CopyTo(_keys);
            threshold = KthLargest(_keys.AsSpan(0, vocab), k);
            if (float.IsNaN(threshold)) threshold = float.NegativeInfinity;
        }
        for (int i = 0; i < vocab; i++)
        {
            float v = x[i];
            if (v >= threshold && v > float.NegativeInfinity) { _keys[n] = -v; _ids[n] = i; n++; }
        }
        if (n == 0) throw new InvalidOperationException("every logit is -infinity or NaN; there is no token to sample");
        // Sort ascending on the negated logit: descending probability. Array.Sort is not stable, so equal logits are
        // then put in id order: a filter boundary that falls inside a tie keeps the lower ids, the same way every run.
        Array.Sort(_keys, _ids, 0, n);
        for (int i = 0; i < n;)
        {
            int j = i + 1;
            while (j < n && _keys[j] == _keys[i]) j++;
            if (j - i > 1) Array.Sort(_ids, i, j - i);
            _keys[i] = -_keys[i];
            for (int t = i + 1; t < j; t++) _keys[t] = -_keys[t];
            i = j;
        }
        return n;
    }

    /// <summary>The k-th largest value (1-based) of <paramref name="a"/>, by quickselect; reorders <paramref name="a"/>.</summary>
    private static float KthLargest(Span<float> a, int k)
    {
        int lo = 0, hi = a.Length - 1, target = k - 1;
        uint state = 0x9E3779B9;
        while (lo < hi)
        {
            state ^= state << 13; state ^= state >> 17; state ^= state << 5;
            float pivot = a[lo + (int)(state % (uint)(hi - lo + 1))];
            if (float.IsNaN(pivot)) pivot = float.NegativeInfinity;
            int i = lo, j = hi;
            while (i <= j)
            {
                while (Greater(a[i], pivot)) i++;
                while (Greater(pivot, a[j])) j--;
                if (i <= j) { (a[i], a[j]) = (a[j], a[i]); i++; j--; }
            }
            if (target <= j) hi = j;
            else if (target >= i) lo = i;
            else break;
        }
        return a[target];
    }

    // NaN sorts as the smallest value so it is never among the top k.
    private static bool Greater(float a, float b) => (float.IsNaN(a) ? float.NegativeInfinity : a) > (float.IsNaN(b) ? float.NegativeInfinity : b);

    /// <summary>xoshiro256** (Blackman and Vigna): fixed across .NET versions, unlike System.Random's algorithms.</summary>
    private struct Xoshiro256
    {
        private ulong _s0, _s1, _s2, _s3;

        public Xoshiro256(ulong seed)
        {
            _s0 = SplitMix(ref seed); _s1 = SplitMix(ref seed); _s2 = SplitMix(ref seed); _s3 = SplitMix(ref seed);
        }

        private static ulong SplitMix(ref ulong x)
        {
            ulong z = x += 0x9E3779B97F4A7C15;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
            return z ^ (z >> 31);
        }

        public ulong Next()
        {
            ulong result = ulong.RotateLeft(_s1 * 5, 7) * 9, t = _s1 << 17;
            _s2 ^= _s0; _s3 ^= _s1; _s1 ^= _s2; _s0 ^= _s3; _s2 ^= t; _s3 = ulong.RotateLeft(_s3, 45);
            return result;
        }

        /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
        public double NextDouble() => (Next() >> 11) * (1.0 / (1UL << 53));
    }
}
