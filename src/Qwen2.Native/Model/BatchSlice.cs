namespace Qwen2.Native;

/// <summary>One sequence's slice of a forward call: its tokens' range in the call, its cache, and how many of its last rows get logits.</summary>
internal struct BatchSlice
{
    public int Start, Length, Rows;
    public PastKeyValues? Cache;
}
