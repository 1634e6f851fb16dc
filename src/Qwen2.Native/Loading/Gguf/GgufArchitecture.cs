namespace Qwen2.Native;

/// <summary>
/// One <c>general.architecture</c> the engine runs from GGUF: its tensor names and how its config is read from the
/// <c>{Name}.*</c> metadata keys. <see cref="GgufArchitectures"/> is the table; adding qwen3 is adding a row.
/// </summary>
/// <param name="Name">The value of <c>general.architecture</c>.</param>
/// <param name="Names">The tensor names.</param>
internal sealed record GgufArchitecture(string Name, TensorNames Names);
