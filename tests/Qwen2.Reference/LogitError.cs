
namespace Qwen2.Reference;

/// <summary>Distances between logit tables (one row per position) and the float64 reference.</summary>
public static class LogitError
{
    /// <summary>The largest |a - reference| over every position and vocabulary entry.</summary>
    public static double MaxAbs(IReadOnlyList<float[]> a, double[][] reference)
    {
        if (a.Count != reference.Length) throw new ArgumentException($"{a.Count} rows against the reference's {reference.Length}");
        double worst = 0;
        for (int p = 0; p < a.Count; p++)
        {
            if (a[p].Length != reference[p].Length) throw new ArgumentException($"row {p} has {a[p].Length} logits, the reference {reference[p].Length}");
            for (int j = 0; j < a[p].Length; j++) worst = Math.Max(worst, Math.Abs(a[p][j] - reference[p][j]));
        }
        return double.IsNaN(worst) ? double.PositiveInfinity : worst;
    }

    /// <summary>The largest |reference|.</summary>
    public static double MaxAbs(double[][] reference) => reference.Max(r => r.Max(Math.Abs));
}
