namespace Qwen2.Native;

/// <summary>
/// No checkpoint was found for a model argument. The message says what was searched and how to get a checkpoint.
/// Derives from <see cref="FileNotFoundException"/> so callers that treat missing files as usage errors handle it too.
/// </summary>
public sealed class ModelNotFoundException : FileNotFoundException
{
    /// <summary>Creates the error for <paramref name="model"/>, listing <paramref name="searched"/>.</summary>
    public ModelNotFoundException(string message, string? model, IReadOnlyList<string> searched)
        : base(message, model)
    {
        Model = model;
        Searched = searched;
    }

    /// <summary>The model argument as given (after the <c>QWEN2_MODEL</c> default), or null when there was none.</summary>
    public string? Model { get; }

    /// <summary>The paths that were looked at, in order.</summary>
    public IReadOnlyList<string> Searched { get; }
}
