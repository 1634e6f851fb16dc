using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Qwen2.Native.Text;

/// <summary>
/// JSON as Python's <c>json.dumps(value, ensure_ascii=False)</c> writes it, which is what transformers' <c>tojson</c>
/// filter gives the chat templates: ", " and ": " separators, keys in their order, non-ASCII text as is, and numbers
/// as Python prints the int or float json.loads made of them.
/// </summary>
internal static class PythonJson
{
    public static string Dumps(JsonElement value)
    {
        var sb = new StringBuilder();
        Write(sb, value);
        return sb.ToString();
    }

    private static void Write(StringBuilder sb, JsonElement e)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.Object:
                sb.Append('{');
                bool first = true;
                foreach (var p in e.EnumerateObject())
                {
                    if (!first) sb.Append(", ");
                    first = false;
                    String(sb, p.Name);
                    sb.Append(": ");
                    Write(sb, p.Value);
                }
                sb.Append('}');
                break;
            case JsonValueKind.Array:
                sb.Append('[');
                int i = 0;
                foreach (var item in e.EnumerateArray())
                {
                    if (i++ > 0) sb.Append(", ");
                    Write(sb, item);
                }
                sb.Append(']');
                break;
            case JsonValueKind.String: String(sb, e.GetString()!); break;
            case JsonValueKind.Number: sb.Append(Number(e.GetRawText())); break;
            case JsonValueKind.True: sb.Append("true"); break;
            case JsonValueKind.False: sb.Append("false"); break;
            default: sb.Append("null"); break;
        }
    }

    private static void String(StringBuilder sb, string s)
    {
        sb.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    if (c < 0x20) sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }

    /// <summary>An integer literal stays an int (Python's ints are unbounded); any other becomes a float printed by repr.</summary>
    internal static string Number(string literal)
    {
        if (literal.AsSpan().IndexOfAny('.', 'e', 'E') < 0)
            return System.Numerics.BigInteger.Parse(literal, CultureInfo.InvariantCulture).ToString(CultureInfo.InvariantCulture);
        return FloatRepr(double.Parse(literal, CultureInfo.InvariantCulture));
    }

    /// <summary>Python's repr of a float: the shortest round-trip digits, fixed notation for exponents -4 to 15, else d.ddde±XX.</summary>
    internal static string FloatRepr(double v)
    {
        if (double.IsPositiveInfinity(v)) return "Infinity";
        if (double.IsNegativeInfinity(v)) return "-Infinity";
        if (double.IsNaN(v)) return "NaN";
        if (v == 0) return double.IsNegative(v) ? "-0.0" : "0.0";
        // The shortest digits that round-trip, from .NET's "R", without sign, point or exponent.
        string shortest = Math.Abs(v).ToString("R", CultureInfo.InvariantCulture);
        int ePos = shortest.IndexOfAny(['E', 'e']);
        string mantissa = ePos < 0 ? shortest : shortest[..ePos];
        int exp = ePos < 0 ? 0 : int.Parse(shortest[(ePos + 1)..], CultureInfo.InvariantCulture);
        int point = mantissa.IndexOf('.');
        string digits = mantissa.Replace(".", "", StringComparison.Ordinal);
        int intDigits = point < 0 ? mantissa.Length : point;
        // Normalise: value = 0.digits × 10^(decimalExponent)
        int lead = 0;
        while (lead < digits.Length - 1 && digits[lead] == '0') lead++;
        int decimalExponent = intDigits + exp - lead;
        digits = digits[lead..].TrimEnd('0');
        if (digits.Length == 0) digits = "0";
        int sciExp = decimalExponent - 1; // d.ddd × 10^sciExp
        var sb = new StringBuilder();
        if (v < 0) sb.Append('-');
        if (sciExp >= -4 && sciExp < 16)
        {
            if (decimalExponent <= 0) sb.Append("0.").Append('0', -decimalExponent).Append(digits);
            else if (decimalExponent >= digits.Length) sb.Append(digits).Append('0', decimalExponent - digits.Length).Append(".0");
            else sb.Append(digits, 0, decimalExponent).Append('.').Append(digits, decimalExponent, digits.Length - decimalExponent);
        }
        else
        {
            sb.Append(digits[0]);
            if (digits.Length > 1) sb.Append('.').Append(digits, 1, digits.Length - 1);
            sb.Append('e').Append(sciExp < 0 ? '-' : '+').Append(Math.Abs(sciExp).ToString("00", CultureInfo.InvariantCulture));
        }
        return sb.ToString();
    }
}
