namespace Qwen2.Native.Text;

/// <summary>
/// A token from the <c>added_tokens</c> list of tokenizer.json: matched whole in the input before normalization
/// and pre-tokenization, whether special or not.
/// </summary>
/// <param name="Id">The token id.</param>
/// <param name="Content">The exact text of the token, e.g. <c>&lt;|im_start|&gt;</c>.</param>
/// <param name="Special">Whether decoding with <c>skipSpecialTokens</c> drops it.</param>
/// <param name="SingleWord">Matched only when no word character (letter, mark, digit, underscore) touches it on either side.</param>
/// <param name="LStrip">A match also takes the whitespace before it.</param>
/// <param name="RStrip">A match also takes the whitespace after it.</param>
/// <param name="Normalized">Matched in the normalized text rather than the original.</param>
public sealed record AddedToken(int Id, string Content, bool Special, bool SingleWord = false, bool LStrip = false, bool RStrip = false, bool Normalized = false);
