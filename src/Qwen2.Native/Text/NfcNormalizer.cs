using System.Text;
using Microsoft.ML.Tokenizers;

namespace Qwen2.Native.Text;

/// <summary>Unicode NFC, refusing to run where the runtime cannot really normalize.</summary>
internal sealed class NfcNormalizer : Normalizer
{
    /// <summary>Whether this runtime's <see cref="string.Normalize(NormalizationForm)"/> composes (false in globalization-invariant mode).</summary>
    internal static readonly bool RuntimeSupportsNfc = ProbeRuntime();

    internal static readonly NfcNormalizer Instance = new(RuntimeSupportsNfc);

    private readonly bool _available;

    /// <summary>Creates a normalizer; <paramref name="available"/> false makes it throw on any text that is not ASCII.</summary>
    internal NfcNormalizer(bool available) => _available = available;

    public override string Normalize(string original)
    {
        // ASCII is NFC already: no need for the runtime's tables, which may be missing.
        if (Ascii.IsValid(original)) return original;
        if (!_available) throw Unavailable();
        return original.IsNormalized(NormalizationForm.FormC) ? original : original.Normalize(NormalizationForm.FormC);
    }

    public override string Normalize(ReadOnlySpan<char> original) => Normalize(original.ToString());

    internal static InvalidOperationException Unavailable() => new(
        "Unicode NFC normalization, which the Qwen2 tokenizer applies before splitting text, does not work in this process: " +
        "globalization-invariant mode is on (DOTNET_SYSTEM_GLOBALIZATION_INVARIANT or <InvariantGlobalization>true</InvariantGlobalization>) " +
        "or ICU is missing. Turn invariant mode off, or the token ids of non-ASCII text would silently differ from Hugging Face's.");

    /// <summary>
    /// Invariant mode returns text unchanged from <c>Normalize</c> without an error, so test a pair that must compose:
    /// 'e' + U+0301 COMBINING ACUTE ACCENT is U+00E9 in NFC.
    /// </summary>
    private static bool ProbeRuntime()
    {
        try
        {
            return "e\u0301".Normalize(NormalizationForm.FormC) == "\u00E9";
        }
        catch (PlatformNotSupportedException)
        {
            return false;
        }
    }
}
