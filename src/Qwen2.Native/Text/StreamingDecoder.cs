using System.Buffers;
using System.Text;

namespace Qwen2.Native.Text;

/// <summary>
/// Decodes ids one at a time as a model generates them. Text comes out as soon as its UTF-8 bytes are complete,
/// so a character spread over several byte-level tokens (an emoji, a CJK character) comes out whole, never as U+FFFD halves.
/// The concatenation of everything <see cref="Append"/> and <see cref="Flush"/> return equals <see cref="Qwen2Tokenizer.Decode"/> of all ids.
/// </summary>
public sealed class StreamingDecoder
{
    private readonly Qwen2Tokenizer _tokenizer;
    private readonly bool _skipSpecialTokens;
    private byte[] _pending = new byte[16];
    private int _count;

    internal StreamingDecoder(Qwen2Tokenizer tokenizer, bool skipSpecialTokens)
    {
        _tokenizer = tokenizer;
        _skipSpecialTokens = skipSpecialTokens;
    }

    /// <summary>
    /// Adds one id a model generated: as <see cref="Append"/>, except that an id past the tokenizer (a padding row of
    /// the model's vocabulary, which a trained model never picks but random weights may) has no text.
    /// </summary>
    internal string AppendGenerated(int id) => (uint)id < (uint)_tokenizer.VocabSize ? Append(id) : "";

    /// <summary>Adds one id; returns the text it completes, possibly "".</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="id"/> is not a token of the vocabulary.</exception>
    public string Append(int id)
    {
        var bytes = _tokenizer.TokenBytes(id);
        if (_skipSpecialTokens && _tokenizer.IsSpecial(id)) return "";
        if (_count + bytes.Length > _pending.Length) Array.Resize(ref _pending, Math.Max(_pending.Length * 2, _count + bytes.Length));
        bytes.CopyTo(_pending, _count);
        _count += bytes.Length;

        int ready = CompletePrefixLength(_pending.AsSpan(0, _count));
        if (ready == 0) return "";
        // Bytes before an incomplete tail decode the same alone as with what follows: the tail starts with a lead byte,
        // which ends any invalid sequence before it, so the U+FFFD replacements match a whole-text decode.
        string text = Encoding.UTF8.GetString(_pending, 0, ready);
        _pending.AsSpan(ready, _count - ready).CopyTo(_pending);
        _count -= ready;
        return text;
    }

    /// <summary>Ends the stream: returns the bytes still waiting for their continuation, as U+FFFD like a whole-text decode would.</summary>
    public string Flush()
    {
        string text = Encoding.UTF8.GetString(_pending, 0, _count);
        _count = 0;
        return text;
    }

    /// <summary>Length of <paramref name="bytes"/> without a trailing sequence that is a valid but unfinished UTF-8 character.</summary>
    private static int CompletePrefixLength(ReadOnlySpan<byte> bytes)
    {
        // A UTF-8 character is at most 4 bytes, so an unfinished one starts within the last 3.
        for (int back = 1; back <= Math.Min(3, bytes.Length); back++)
        {
            byte b = bytes[^back];
            if ((b & 0xC0) == 0x80) continue; // continuation byte: keep looking for the lead
            var status = Rune.DecodeFromUtf8(bytes[^back..], out _, out _);
            return status == OperationStatus.NeedMoreData ? bytes.Length - back : bytes.Length;
        }
        return bytes.Length;
    }
}
