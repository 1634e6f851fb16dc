namespace Qwen2.Native.Structured;

/// <summary>
/// Bounds the constrained decoder puts where a schema leaves a size open, so that every generation ends: a model that
/// keeps writing string characters, array items or nested objects is made to close them once a bound is reached. A
/// schema's own <c>maxLength</c> or <c>maxItems</c> takes precedence, and a bound never goes below the schema's minimum.
/// </summary>
public sealed record JsonLimits
{
    /// <summary>The defaults: generous enough for real answers, finite for a model that would never stop.</summary>
    public static JsonLimits Default { get; } = new();

    /// <summary>Characters (code points) of a string whose schema gives no <c>maxLength</c>.</summary>
    public int MaxStringLength { get; init; } = 4096;

    /// <summary>Items of an array whose schema gives no <c>maxItems</c>.</summary>
    public int MaxItems { get; init; } = 1024;

    /// <summary>Properties an object may add beyond those its schema names (<c>additionalProperties</c>, free objects).</summary>
    public int MaxAdditionalProperties { get; init; } = 64;

    /// <summary>Characters of such an added property's name.</summary>
    public int MaxKeyLength { get; init; } = 64;

    /// <summary>Objects and arrays open at once; recursive schemas (<c>$ref</c>) close their recursion here.</summary>
    public int MaxDepth { get; init; } = 16;

    /// <summary>Checks every field.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A bound is below 1; the parameter name says which.</exception>
    public void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxStringLength, 1, nameof(MaxStringLength));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxItems, 1, nameof(MaxItems));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxAdditionalProperties, 1, nameof(MaxAdditionalProperties));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxKeyLength, 1, nameof(MaxKeyLength));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxDepth, 1, nameof(MaxDepth));
    }
}
