namespace Qwen2.Native.Tests;

/// <summary>
/// One unusable checkpoint of <see cref="LoadingErrorCatalogue"/>: <see cref="Break"/> breaks the copy of
/// <see cref="Fixture"/> (an empty directory when null) in one way and says what the error must name.
/// </summary>
internal sealed record LoadingErrorCase(string Name, string? Fixture, Func<TempDir, ExpectedError> Break);
