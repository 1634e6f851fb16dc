using System.Text;

namespace Qwen2.Native.Text;

/// <summary>GPT-2's byte-level alphabet: every byte is shown as a printable character, e.g. space as 'Ġ' (U+0120).</summary>
internal static class ByteLevel
{
    private static readonly Dictionary<char, byte> CharToByte = Build();

    /// <summary>
    /// Hugging Face's ByteLevel decoder rule for one token: if every character is in the byte alphabet, the bytes they
    /// stand for; otherwise (an added token such as "a b" with a plain space) the token's own UTF-8.
    /// </summary>
    public static byte[] TokenToBytes(string token)
    {
        var bytes = new byte[token.Length];
        for (int i = 0; i < token.Length; i++)
        {
            if (!CharToByte.TryGetValue(token[i], out bytes[i])) return Encoding.UTF8.GetBytes(token);
        }
        return bytes;
    }

    private static Dictionary<char, byte> Build()
    {
        // bytes_to_unicode(): printable Latin-1 bytes map to themselves, the other 68 to U+0100 upwards in byte order.
        var map = new Dictionary<char, byte>(256);
        int next = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is (>= '!' and <= '~') or (>= 0xA1 and <= 0xAC) or (>= 0xAE and <= 0xFF);
            map[(char)(printable ? b : 256 + next++)] = (byte)b;
        }
        return map;
    }
}
