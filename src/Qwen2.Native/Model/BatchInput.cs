namespace Qwen2.Native;

/// <summary>One sequence of a batched forward (<see cref="Qwen2Model.ForwardBatch"/>): its new tokens and its cache.</summary>
/// <param name="InputIds">New token ids, each in [0, vocab_size); at least one.</param>
/// <param name="Cache">The sequence's caches, appended to and read at their own position; null runs the tokens with no cache.</param>
/// <param name="Logits">Logits for every new token or only the last.</param>
public readonly record struct BatchInput(ReadOnlyMemory<int> InputIds, PastKeyValues? Cache = null, LogitsSelection Logits = LogitsSelection.Last);
