using Qwen2.Kernels;

namespace Qwen2.Native;

/// <summary>What <see cref="SyntheticCheckpoint.Write"/> wrote.</summary>
/// <param name="Directory">The checkpoint directory.</param>
/// <param name="Shape">The architecture.</param>
/// <param name="DType">Element type of every tensor.</param>
/// <param name="ParameterCount">Parameters stored.</param>
/// <param name="WeightFileBytes">Size of <c>model.safetensors</c>.</param>
/// <param name="Elapsed">Time taken.</param>
public sealed record SyntheticCheckpointResult(string Directory, SyntheticShape Shape, WeightType DType, long ParameterCount, long WeightFileBytes, TimeSpan Elapsed);
