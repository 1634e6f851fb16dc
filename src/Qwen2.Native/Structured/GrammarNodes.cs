namespace Qwen2.Native.Structured;

/// <summary>
/// A compiled schema: a graph of value nodes (recursive through <see cref="RefNode"/>). <see cref="MinDepth"/> is the
/// fewest objects and arrays a value of the node must open, so the matcher only starts what it can finish within
/// <see cref="JsonLimits.MaxDepth"/>; <see cref="Unreachable"/> marks a node with no finite value.
/// </summary>
internal abstract class GrammarNode
{
    public const int Unreachable = int.MaxValue / 2;

    public int MinDepth = Unreachable;

    /// <summary>This node, or the one a reference points to.</summary>
    public virtual GrammarNode Resolve() => this;

    /// <summary>The fewest containers a value needs, given the current estimates of the nodes below.</summary>
    public abstract int ComputeMinDepth();
}

/// <summary>An object: <see cref="Properties"/> in schema order, each at most once, then up to a bound of extra keys.</summary>
internal sealed class ObjectNode : GrammarNode
{
    public required PropertyRule[] Properties;
    /// <summary>The schema of keys the schema does not name; null: none allowed.</summary>
    public GrammarNode? Additional;
    public int MaxAdditional;
    public int MaxKeyLength;
    /// <summary>UTF-8 of every declared name, which an extra key must not repeat.</summary>
    public byte[][] DeclaredNames = [];
    /// <summary>FirstRequired[i]: index of the first required property at or after i (Properties.Length if none).</summary>
    public int[] FirstRequired = [];

    public void Seal()
    {
        FirstRequired = new int[Properties.Length + 1];
        FirstRequired[Properties.Length] = Properties.Length;
        for (int i = Properties.Length - 1; i >= 0; i--) FirstRequired[i] = Properties[i].Required ? i : FirstRequired[i + 1];
        DeclaredNames = Properties.Select(p => System.Text.Encoding.UTF8.GetBytes(p.Name)).ToArray();
    }

    public override int ComputeMinDepth()
    {
        int d = 0;
        foreach (var p in Properties)
            if (p.Required) d = Math.Max(d, p.Value.Resolve().MinDepth);
        return Math.Min(Unreachable, 1 + d);
    }
}

/// <summary>A declared property: its name as the JSON key bytes (quotes included), its schema, whether required.</summary>
internal sealed record PropertyRule(string Name, byte[] Key, GrammarNode Value, bool Required);

internal sealed class ArrayNode : GrammarNode
{
    public required GrammarNode Items;
    public int Min, Max;

    public override int ComputeMinDepth() =>
        Min > Max ? Unreachable : Math.Min(Unreachable, 1 + (Min > 0 ? Items.Resolve().MinDepth : 0));
}

internal sealed class StringNode : GrammarNode
{
    public int Min, Max;

    public override int ComputeMinDepth() => Min > Max ? Unreachable : 0;
}

/// <summary>
/// A number or integer, optionally with bounds (<c>minimum</c>, <c>maximum</c>, <c>exclusive*</c>). A bounded node holds
/// them as an inclusive range of scaled values: units for an integer, 10^-15 for a number. A bounded number has at most 15
/// significant digits in all (integer digits, "0" included, plus fraction digits), so every value it writes converts to
/// a double exactly enough that a validator comparing doubles agrees with the exact comparison.
/// </summary>
internal sealed class NumberNode : GrammarNode
{
    public const int MaxDigits = 15;

    /// <summary>10^0 to 10^31.</summary>
    public static readonly Int128[] Pow10 = Enumerable.Range(0, 32).Select(k => Enumerable.Repeat((Int128)10, k).Aggregate((Int128)1, (a, b) => a * b)).ToArray();

    public bool Integer;
    public bool Bounded;
    /// <summary>The inclusive range of scaled values (<see cref="Scale"/>); Lo above Hi: no value.</summary>
    public Int128 Lo, Hi;
    /// <summary>Bounded: whether some negative (or positive, zero included) value within the digit limits is in the range.</summary>
    public bool CanNegative, CanPositive;

    /// <summary>Value units per 1: 1 for an integer, 10^15 for a number.</summary>
    public Int128 Scale => Integer ? 1 : Pow10[MaxDigits];

    /// <summary>The largest magnitude a value can have, scaled.</summary>
    public Int128 MaxAbs => (Pow10[MaxDigits] - 1) * Scale;

    /// <summary>Works out which signs can start a value; call once the bounds are set.</summary>
    public void Seal()
    {
        if (!Bounded) return;
        for (long c = 0; c <= 9; c++)
        {
            CanNegative |= Lo < 0 && (InRange(true, c * Scale) || WholeGoesOn(true, c, 1));
            CanPositive |= InRange(false, c * Scale) || WholeGoesOn(false, c, 1);
        }
    }

    public override int ComputeMinDepth() => !Bounded || CanNegative || CanPositive ? 0 : Unreachable;

    /// <summary>Whether the value of magnitude <paramref name="abs"/> (scaled) with this sign is in the range.</summary>
    public bool InRange(bool negative, Int128 abs) => Hits(negative, abs, abs, 1);

    /// <summary>
    /// Whether an integer part <paramref name="whole"/> of <paramref name="digits"/> digits can go on (more integer
    /// digits, or for a number a fraction) to a value in the range.
    /// </summary>
    public bool WholeGoesOn(bool negative, long whole, int digits)
    {
        if (!Integer && digits < MaxDigits && FractionOpens(negative, whole, digits)) return true;
        if (whole == 0) return false;
        for (int k = 1; digits + k <= MaxDigits; k++)
        {
            Int128 a = whole * Pow10[k] * Scale, b = (whole + 1) * Pow10[k] * Scale - 1;
            // A number with digits + k integer digits keeps MaxDigits - digits - k fraction digits: its values step by 10^(digits + k).
            if (Hits(negative, a, b, Integer ? 1 : Pow10[digits + k])) return true;
        }
        return false;
    }

    /// <summary>Whether "whole." can go on to a value in the range (a number's integer part of <paramref name="digits"/> digits).</summary>
    public bool FractionOpens(bool negative, long whole, int digits) =>
        Hits(negative, whole * Scale, (whole + 1) * Scale - 1, Pow10[digits]);

    /// <summary>Whether "whole.fraction" (<paramref name="fracDigits"/> of them) can take more fraction digits and stay in the range.</summary>
    public bool FractionGoesOn(bool negative, long whole, int digits, long fraction, int fracDigits)
    {
        if (digits + fracDigits >= MaxDigits) return false;
        Int128 a = Fraction(whole, fraction, fracDigits);
        return Hits(negative, a, a + Pow10[MaxDigits - fracDigits] - 1, Pow10[digits]);
    }

    /// <summary>The scaled magnitude of "whole.fraction" (a number).</summary>
    public static Int128 Fraction(long whole, long fraction, int fracDigits) =>
        whole * Pow10[MaxDigits] + fraction * Pow10[MaxDigits - fracDigits];

    /// <summary>Whether a magnitude in [a, b] that is a multiple of <paramref name="step"/> (a is one) is in the range with this sign.</summary>
    private bool Hits(bool negative, Int128 a, Int128 b, Int128 step)
    {
        if (!Bounded) return true;
        Int128 lo = negative ? -Hi : Lo, hi = negative ? -Lo : Hi;
        Int128 from = a > lo ? a : lo, to = b < hi ? b : hi;
        if (from > to) return false;
        return a + (from - a + step - 1) / step * step <= to;
    }
}

/// <summary>One of a fixed set of compact JSON texts (enum, const, true/false, null).</summary>
internal sealed class LiteralNode : GrammarNode
{
    public required byte[][] Values;
    /// <summary>The rest of an enum's schema, which each value must also satisfy; applied once by the compiler.</summary>
    public GrammarNode? Check;

    public override int ComputeMinDepth() => Values.Length == 0 ? Unreachable : 0;
}

/// <summary>Any of several schemas (anyOf, oneOf, a list of types): the matcher follows every alternative at once.</summary>
internal sealed class UnionNode : GrammarNode
{
    public required GrammarNode[] Alternatives;

    public override int ComputeMinDepth()
    {
        int d = Unreachable;
        foreach (var a in Alternatives) d = Math.Min(d, a.Resolve().MinDepth);
        return d;
    }
}

/// <summary>A local $ref, filled in once its target is compiled (so recursion works).</summary>
internal sealed class RefNode : GrammarNode
{
    public GrammarNode? Target;

    public override GrammarNode Resolve()
    {
        GrammarNode n = this;
        for (int hops = 0; n is RefNode r; hops++)
        {
            if (hops > 64 || r.Target is null) throw new InvalidOperationException("unresolved schema reference");
            n = r.Target;
        }
        return n;
    }

    public override int ComputeMinDepth() => Resolve().MinDepth;
}
