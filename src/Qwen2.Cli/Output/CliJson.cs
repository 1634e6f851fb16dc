namespace Qwen2.Cli;

/// <summary>Source-generated JSON contracts (no reflection, so the AOT build stays warning-free).</summary>
[System.Text.Json.Serialization.JsonSerializable(typeof(string[]))]
[System.Text.Json.Serialization.JsonSerializable(typeof(string))]
internal sealed partial class CliJson : System.Text.Json.Serialization.JsonSerializerContext;
