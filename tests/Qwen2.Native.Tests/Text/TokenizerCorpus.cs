using System.Text;

namespace Qwen2.Native.Tests.Tokenizer;

/// <summary>Texts for tokenizer parity: a hand-picked corpus of known traps and seeded random strings.</summary>
public static class TokenizerCorpus
{
    public static readonly string[] Fixed =
    [
        "",
        "Hello world",
        "Hello, world! How are you today? I'm fine; thanks.",
        "The quick brown fox jumps over the lazy dog.\nThe end.\n",
        "def main():\n\tif x == 1:\n\t\treturn  y\t# tab\n    else:\n        pass\n",
        "int main(void) { printf(\"%d\\n\", a[i] + b->c); return 0; }",
        "1234567 3.14159 -42 1e-9 0x1F 2024-01-31 ١٢٣ ⅫⅣ ½ ²³",
        "中文测试，你好世界。日本語のテキスト、カタカナ。한국어 텍스트입니다.",
        "Emoji: 😀😃👍🏽 👩‍👩‍👧‍👦 👩🏽‍💻 🏳️‍🌈 🇯🇵 ❤️ ✊🏿",
        "𝐇𝐞𝐥𝐥𝐨 𝐖𝐨𝐫𝐥𝐝 𠮷野家 𝟏𝟐𝟑 𝒜𝓑 𐍈 𝔘𝔫𝔦",
        "x𝐇y 1𝟏2 '𝐇 ,𠮷, 𠮷1",
        "   leading spaces and trailing spaces   ",
        "multiple\n\n\nnewlines\r\n\r\nand CRLF\r\n",
        "tabs\t\t\tand\u00A0nbsp\u3000ideographic\u2003em space\u2028line sep\u0085nel",
        " \n \n\t \r\n  x  \n  ",
        "trailing space ",
        "trailing spaces and newline   \n",
        "I'm, you're, he's, we've, they'll, I'd, don't",
        "I'M, YOU'RE, HE'S, WE'VE, THEY'LL, I'D, DON'T, It'S, we'Ll",
        "it'ſ x'ſt 'ſ 'K 'ﬅ 'Ｓ '𝐬 'sup 'llama 'dd",
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n",
        "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
        "<think>\nLet me think...\n</think>\n\nThe answer is 42.<|im_end|><|endoftext|>",
        "<tool_response>ok</tool_response><|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>c<|repo_name|>r<|file_sep|>",
        "glued<|im_start|>text<|im_end|>more<|endoftext|>",
        "<|im_start|<|im_start|>|> <|im_end <| |>",
        "Cafe\u0301 re\u0301sume\u0301 A\u030A n\u0303 \u1100\u1161\u11A8 e\u0301\u0301",
        "<|im_end|>\u0338 a>\u0338b =\u0338",
        "\u0300\u0301 leading combining",
        "Ünïcödé façade naïve coöperate Ωμέγα Привет мир مرحبا بالعالم नमस्ते दुनिया",
        "   \t   ",
        "\n",
        "a\r\nb\rc\nd\r\n\r\n",
        "!!! ??? ... --- *** ### $$$ %%% ^^^ &&& ((( ))) [[[ ]]] {{{ }}}",
        " !!!\n\n ,,, x",
        "URL: https://example.com/path?q=1&r=two#frag email@example.org",
        "JSON {\"a\": [1, 2, 3], \"b\": null, \"c\": true}",
        "ſ K Å ß ẞ ﬁ ﬀ İ ı",
        "\u200B\u200C\u200D\uFEFF zero width \u2060 joiner",
        "\uFFFD replacement \uFFFF nonchar",
    ];

    /// <summary>About 5,000 characters of mixed prose, code and CJK.</summary>
    public static string LongParagraph()
    {
        var sb = new StringBuilder();
        string[] parts =
        [
            "In the beginning the Universe was created. This has made a lot of people very angry and been widely regarded as a bad move. ",
            "The ships hung in the sky in much the same way that bricks don't. ",
            "for (int i = 0; i < 10; i++) { sum += a[i] * 3.14159; }\n",
            "人工智能正在改变世界，我们需要认真思考它的影响。",
            "It's 1234567 o'clock, and we'LL see 🚀🚀 what happens.  ",
        ];
        for (int i = 0; sb.Length < 5000; i++) sb.Append(parts[i % parts.Length]);
        return sb.ToString(0, 5000);
    }

    private static readonly string[] Words = ["the", "The", "hello", "World", "token", "Qwen", "naïve", "don't", "I'm", "it's", "WE'LL", "x", "ab", "ſ"];
    private static readonly string[] Spaces = [" ", " ", "  ", "\t", "\n", "\r\n", "\n\n", "   ", "\u00A0", "\u3000", " \n", "\t\n ", "\r"];
    private static readonly string[] Punct = [".", ",", "!", "?", "'", "\"", "(", ")", "-", "_", "#", "@", "{", "}", "...", "—", "“", "”", "«", "»", "'s", "'S", "'ll", "'LL", "'re", "'T", "'d", "'M", "'ve"];
    private static readonly string[] Added = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<tool_call>", "</tool_call>", "<think>", "</think>", "<tool_response>", "<|fim_pad|>", "<|box_start|>", "<|im_start|", "<think"];
    private static readonly string[] Emoji = ["👍🏽", "👩‍💻", "🏳️‍🌈", "❤️", "\u200D", "\uFE0F", "🇫🇷"];
    private static readonly string[] Combining = ["\u0301", "\u0300", "\u0308", "\u0327", "\u0338", "\u0303", "\u20DD"];

    /// <summary><paramref name="count"/> seeded random strings mixing every kind of character the pre-tokenizer distinguishes.</summary>
    public static List<string> Random(int count, int seed = 20240601)
    {
        var rng = new Random(seed);
        var list = new List<string>(count);
        var sb = new StringBuilder();
        for (int n = 0; n < count; n++)
        {
            sb.Clear();
            int pieces = rng.Next(1, 14);
            for (int p = 0; p < pieces; p++)
            {
                switch (rng.Next(13))
                {
                    case 0: case 1: sb.Append(Words[rng.Next(Words.Length)]); break;
                    case 2: sb.Append(Spaces[rng.Next(Spaces.Length)]); break;
                    case 3: sb.Append(Punct[rng.Next(Punct.Length)]); break;
                    case 4: for (int k = rng.Next(1, 9); k > 0; k--) sb.Append((char)rng.Next('0', '9' + 1)); break;
                    case 5: for (int k = rng.Next(1, 5); k > 0; k--) sb.Append((char)rng.Next(0x4E00, 0x9FA6)); break; // CJK Unified
                    case 6: // astral: math bold letters and digits, CJK Ext B, emoji, Gothic
                        int[][] ranges = [[0x1D400, 0x1D433], [0x1D7CE, 0x1D7FF], [0x20000, 0x2A6D6], [0x1F600, 0x1F64F], [0x10330, 0x1034A]];
                        var r = ranges[rng.Next(ranges.Length)];
                        for (int k = rng.Next(1, 4); k > 0; k--) sb.Append(char.ConvertFromUtf32(rng.Next(r[0], r[1] + 1)));
                        break;
                    case 7: sb.Append(Combining[rng.Next(Combining.Length)]); break;
                    case 8: sb.Append(Added[rng.Next(Added.Length)]); break;
                    case 9: sb.Append((char)rng.Next(0x20, 0x7F)); break; // any printable ASCII
                    case 10: sb.Append((char)rng.Next(0xA0, 0x250)); break; // Latin-1 and Latin Extended
                    case 11: // scripts with marks: Devanagari, Arabic, Hangul syllables, Cyrillic, Greek
                        int[][] scripts = [[0x0905, 0x0939], [0x0621, 0x064A], [0xAC00, 0xD7A3], [0x0410, 0x044F], [0x0391, 0x03C9]];
                        var s = scripts[rng.Next(scripts.Length)];
                        for (int k = rng.Next(1, 6); k > 0; k--) sb.Append((char)rng.Next(s[0], s[1] + 1));
                        break;
                    default: sb.Append(Emoji[rng.Next(Emoji.Length)]); break;
                }
            }
            list.Add(sb.ToString());
        }
        return list;
    }
}
