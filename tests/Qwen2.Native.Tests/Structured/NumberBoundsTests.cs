using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Qwen2.Native.Structured;

namespace Qwen2.Native.Tests.Structured;

/// <summary>
/// minimum, maximum and the exclusive bounds on integers and numbers: the matcher takes exactly the texts whose value is
/// in the range (checked against every short text over the number alphabet, by a predicate read from the schema itself),
/// and every prefix it keeps can still be finished.
/// </summary>
public class NumberBoundsTests
{
    private static JsonGrammar Grammar(string schema) => ResponseFormat.JsonSchema(schema).Grammar!;

    private static List<Frame>? Run(JsonGrammar g, string text) => JsonMatcherTests.Run(g, text);

    private static bool Accepts(JsonGrammar g, string text) => Run(g, text) is { } s && JsonGrammar.CanEnd(s);

    private static bool IsPrefix(JsonGrammar g, string text) => Run(g, text) is not null;

    /// <summary>Whether some bytes from <paramref name="state"/> complete the value (depth-first; a live state never needs to back off far).</summary>
    private static bool CanFinish(List<Frame> state, int depth = 0)
    {
        if (JsonGrammar.CanEnd(state)) return true;
        if (depth > 40) return false;
        var next = new List<Frame>();
        foreach (byte c in "0123456789.-"u8)
        {
            JsonGrammar.Step(state, c, next);
            if (next.Count > 0 && CanFinish([.. next], depth + 1)) return true;
        }
        return false;
    }

    private static readonly Regex IntegerText = new(@"^-?(0|[1-9][0-9]*)$", RegexOptions.CultureInvariant);
    private static readonly Regex NumberText = new(@"^-?(0|[1-9][0-9]*)(\.[0-9]+)?$", RegexOptions.CultureInvariant);

    /// <summary>Whether <paramref name="text"/> is a value of the schema, decided from the schema's own keywords with decimals.</summary>
    private static bool Expected(JsonElement schema, string text)
    {
        bool integer = schema.GetProperty("type").GetString() == "integer";
        if (!(integer ? IntegerText : NumberText).IsMatch(text)) return false;
        decimal v = decimal.Parse(text, CultureInfo.InvariantCulture);
        decimal Bound(string key) => schema.GetProperty(key).GetDecimal();
        return (!schema.TryGetProperty("minimum", out _) || v >= Bound("minimum"))
            && (!schema.TryGetProperty("maximum", out _) || v <= Bound("maximum"))
            && (!schema.TryGetProperty("exclusiveMinimum", out _) || v > Bound("exclusiveMinimum"))
            && (!schema.TryGetProperty("exclusiveMaximum", out _) || v < Bound("exclusiveMaximum"));
    }

    [Theory]
    [InlineData("""{"type":"integer","minimum":1,"maximum":7}""")]
    [InlineData("""{"type":"integer","minimum":-7,"maximum":-3}""")]
    [InlineData("""{"type":"integer","minimum":-12,"maximum":5}""")]
    [InlineData("""{"type":"integer","minimum":42,"maximum":42}""")]
    [InlineData("""{"type":"integer","minimum":0,"maximum":0}""")]
    [InlineData("""{"type":"integer","minimum":10}""")]
    [InlineData("""{"type":"integer","maximum":-10}""")]
    [InlineData("""{"type":"integer","minimum":95,"maximum":1050}""")]
    [InlineData("""{"type":"integer","exclusiveMinimum":0,"exclusiveMaximum":100}""")]
    [InlineData("""{"type":"integer","minimum":1.5,"maximum":7.9}""")]
    [InlineData("""{"type":"integer","exclusiveMinimum":-2.5,"exclusiveMaximum":3e1}""")]
    [InlineData("""{"type":"integer","minimum":-1000,"exclusiveMaximum":-999}""")]
    [InlineData("""{"type":"number","minimum":0,"maximum":1}""")]
    [InlineData("""{"type":"number","minimum":0.5,"maximum":2.25}""")]
    [InlineData("""{"type":"number","exclusiveMinimum":-1,"exclusiveMaximum":0}""")]
    [InlineData("""{"type":"number","minimum":-0.05,"maximum":0.05}""")]
    [InlineData("""{"type":"number","minimum":3,"maximum":3}""")]
    [InlineData("""{"type":"number","exclusiveMinimum":9.99}""")]
    [InlineData("""{"type":"number","maximum":-12.5}""")]
    public void BoundsAcceptExactlyTheRangeAndEveryPrefixCanFinish(string schema)
    {
        var g = Grammar(schema);
        var s = JsonDocument.Parse(schema).RootElement;
        bool integer = s.GetProperty("type").GetString() == "integer";
        var start = new List<Frame>();
        g.Start(start);
        // Every text up to five characters over the alphabet, depth first, stepping the matcher once per character.
        void Walk(string text, List<Frame>? state)
        {
            if (text.Length > 0)
            {
                bool accepted = state is not null && JsonGrammar.CanEnd(state);
                // The matcher writes '-' only where the range has negative values, so -0 alone may be left out.
                bool negativeZero = text.StartsWith('-') && text.Trim('-', '0', '.').Length == 0;
                bool expected = Expected(s, text);
                if (!(negativeZero && expected))
                    Assert.True(expected == accepted, $"{schema}: \"{text}\" expected {(expected ? "accepted" : "rejected")}");
                if (state is not null) Assert.True(CanFinish(state), $"{schema}: \"{text}\" is live but cannot finish");
            }
            if (text.Length == 5) return;
            foreach (char c in integer ? "-0123456789" : "-0123456789.")
            {
                List<Frame>? next = null;
                if (state is not null)
                {
                    next = [];
                    JsonGrammar.Step(state, (byte)c, next);
                    if (next.Count == 0) next = null;
                }
                Walk(text + c, next);
            }
        }
        Walk("", start);
    }

    [Fact]
    public void BoundariesAreExact()
    {
        var max1 = Grammar("""{"type":"number","maximum":1}""");
        Assert.True(Accepts(max1, "1"));
        Assert.True(Accepts(max1, "1.0"));
        Assert.True(Accepts(max1, "1.000"));
        Assert.False(IsPrefix(max1, "1.5"));
        Assert.False(IsPrefix(max1, "1.01"));
        Assert.True(Accepts(max1, "0.99999"));
        Assert.True(Accepts(max1, "-123.5"));

        var ex1 = Grammar("""{"type":"number","exclusiveMaximum":1}""");
        Assert.False(Accepts(ex1, "1"));
        Assert.False(IsPrefix(ex1, "1."));           // 1.000… is 1, and nothing above 1 is allowed
        Assert.True(Accepts(ex1, "0.9"));
        var above = Grammar("""{"type":"number","exclusiveMinimum":0.1}""");
        Assert.False(Accepts(above, "0.1"));
        Assert.False(Accepts(above, "0.10"));
        Assert.True(Accepts(above, "0.10000000000001"));   // the smallest step within 15 significant digits

        var days = Grammar("""{"type":"object","properties":{"days":{"type":"integer","minimum":1,"maximum":7}},"required":["days"]}""");
        Assert.True(Accepts(days, """{"days":7}"""));
        Assert.False(IsPrefix(days, """{"days":0"""));
        Assert.False(IsPrefix(days, """{"days":8"""));
        Assert.False(IsPrefix(days, """{"days":-"""));
        Assert.False(IsPrefix(days, """{"days":10"""));

        var big = Grammar("""{"type":"integer","minimum":100000000000000}""");   // 15 digits: the most the matcher writes
        Assert.False(Accepts(big, "99999999999999"));
        Assert.True(IsPrefix(big, "99999999999999"));
        Assert.False(IsPrefix(big, "0"));
        Assert.True(Accepts(big, "999999999999999"));
        Assert.False(IsPrefix(big, "1000000000000000"));
        Assert.True(Accepts(Grammar("""{"type":"integer","maximum":1e300}"""), "123"));   // beyond the digit limit: clamped
        Assert.True(Accepts(Grammar("""{"type":"integer","minimum":-1e300,"maximum":-5}"""), "-5"));

        // A bounded number keeps to 15 significant digits, so a validator comparing doubles agrees.
        var unit = Grammar("""{"type":"number","minimum":0,"maximum":1000}""");
        Assert.True(Accepts(unit, "0.12345678901234"));
        Assert.False(IsPrefix(unit, "0.123456789012345"));
        Assert.True(Accepts(unit, "999.999999999999"));
        Assert.False(IsPrefix(unit, "999.9999999999999"));
        Assert.False(IsPrefix(Grammar("""{"type":"integer","minimum":0}"""), "1234567890123456"));
    }

    [Fact]
    public void BoundsApplyToNumbersOnly()
    {
        var mixed = Grammar("""{"type":["integer","string"],"minimum":5}""");
        Assert.True(Accepts(mixed, "\"abc\""));
        Assert.True(Accepts(mixed, "5"));
        Assert.False(Accepts(mixed, "4"));
        // Bounds without a type: the value is a number in the range (a subset of what the schema allows).
        var untyped = Grammar("""{"minimum":3}""");
        Assert.True(Accepts(untyped, "3.5"));
        Assert.False(Accepts(untyped, "2"));
        // enum beside bounds keeps the values in range.
        var e = Grammar("""{"type":"integer","enum":[1,5,9],"maximum":5}""");
        Assert.True(Accepts(e, "5"));
        Assert.False(Accepts(e, "9"));
    }

    [Theory]
    [InlineData("""{"type":"integer","multipleOf":2}""", "#/multipleOf")]
    [InlineData("""{"type":"integer","minimum":0,"exclusiveMinimum":true}""", "#/exclusiveMinimum")]
    [InlineData("""{"type":"integer","maximum":"7"}""", "#/maximum")]
    [InlineData("""{"type":"integer","minimum":5,"maximum":4}""", "#")]
    [InlineData("""{"type":"integer","minimum":1.2,"maximum":1.8}""", "#")]
    [InlineData("""{"type":"integer","exclusiveMinimum":3,"exclusiveMaximum":4}""", "#")]
    [InlineData("""{"type":"number","minimum":1e20}""", "#")]
    [InlineData("""{"type":"object","properties":{"n":{"type":"number","exclusiveMinimum":0,"exclusiveMaximum":1e-16}},"required":["n"]}""", "#")]
    public void BoundsNoValueMeetsAreRefused(string schema, string path)
    {
        var e = Assert.Throws<JsonSchemaException>(() => ResponseFormat.JsonSchema(schema));
        Assert.Equal(path, e.SchemaPath);
    }
}
