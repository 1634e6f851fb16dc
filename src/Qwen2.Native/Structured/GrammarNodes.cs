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

internal sealed class NumberNode : GrammarNode
{
    public bool Integer;

    public override int ComputeMinDepth() => 0;
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
