using System.Text;
using Qwen2.Native.Structured;

namespace Qwen2.Native.Tests.Structured;

/// <summary>The byte-level matcher and the schema compiler: what they accept, what they reject, what they refuse.</summary>
public class JsonMatcherTests
{
    private static JsonGrammar Grammar(string schema, JsonLimits? limits = null) => ResponseFormat.JsonSchema(schema, limits).Grammar!;

    /// <summary>Whether every prefix of <paramref name="text"/> is alive and the whole is a complete value.</summary>
    private static bool Accepts(JsonGrammar g, string text) => g.AcceptsWhole(Encoding.UTF8.GetBytes(text));

    /// <summary>Whether <paramref name="text"/> is a live prefix (possibly incomplete).</summary>
    private static bool IsPrefix(JsonGrammar g, string text) => Run(g, text) is not null;

    /// <summary>The matcher's state after <paramref name="text"/>; null: rejected on the way.</summary>
    internal static List<Frame>? Run(JsonGrammar g, string text)
    {
        List<Frame> a = [], b = [];
        g.Start(a);
        foreach (byte c in Encoding.UTF8.GetBytes(text))
        {
            JsonGrammar.Step(a, c, b);
            (a, b) = (b, a);
            if (a.Count == 0) return null;
        }
        return a;
    }

    [Fact]
    public void ObjectsFollowPropertiesRequiredAndAdditionalProperties()
    {
        var g = Grammar("""{"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"string"}},"required":["b"],"additionalProperties":false}""");
        Assert.True(Accepts(g, """{"a":1,"b":"x"}"""));
        Assert.True(Accepts(g, """{"a": 12, "b": "x"}"""));
        Assert.True(Accepts(g, """{"b":""}"""));
        Assert.False(Accepts(g, """{"a":1}"""));            // b is required
        Assert.False(IsPrefix(g, """{"b":"x","a":1"""));     // schema order
        Assert.False(IsPrefix(g, """{"c":"""));              // no extra keys
        Assert.False(IsPrefix(g, """{"a":1.5"""));           // integer
        Assert.False(IsPrefix(g, """{"a":  1"""));           // one space at most
        Assert.False(IsPrefix(g, "{\n"));                    // no newlines
        Assert.False(IsPrefix(g, """{"a":01"""));            // no leading zeros

        var open = Grammar("""{"type":"object","properties":{"a":{"type":"null"}},"additionalProperties":{"type":"boolean"}}""");
        Assert.True(Accepts(open, """{"a":null,"x":true,"y":false}"""));
        Assert.False(IsPrefix(open, """{"x":1"""));            // extra values follow additionalProperties
        Assert.False(IsPrefix(open, """{"a":null,"a":"""));    // a declared name is never an extra key
        Assert.False(IsPrefix(open, """{"x":true,"x":"""));    // nor a repeat
        Assert.True(Accepts(Grammar("""{"type":"object"}"""), """{"k":[1,{"z":null}],"n":"v"}"""));
    }

    [Fact]
    public void ArraysStringsNumbersAndLiteralsKeepTheirBounds()
    {
        var g = Grammar("""{"type":"array","items":{"type":"string","minLength":1,"maxLength":3},"minItems":1,"maxItems":2}""");
        Assert.True(Accepts(g, """["a","bcd"]"""));
        Assert.False(Accepts(g, "[]"));
        Assert.False(IsPrefix(g, """["a","b","""));
        Assert.False(IsPrefix(g, """["abcd"""));
        Assert.False(IsPrefix(g, """["","""));
        Assert.True(Accepts(g, """["日本語"]"""));                // three code points, nine bytes

        var n = Grammar("""{"type":"number"}""");
        foreach (var ok in (string[])["0", "-0", "12.5", "-3.25", "7"]) Assert.True(Accepts(n, ok), ok);
        foreach (var bad in (string[])["01", "1.", "+1", "1e5", ".5", "--1"]) Assert.False(Accepts(n, bad), bad);
        Assert.False(IsPrefix(n, "1234567890123456"));             // 15 digits at most

        var e = Grammar("""{"enum":["red",1,[1,2],{"k":"v"},null]}""");
        foreach (var ok in (string[])["\"red\"", "1", "[1,2]", "{\"k\":\"v\"}", "null"]) Assert.True(Accepts(e, ok), ok);
        Assert.False(Accepts(e, "\"blue\""));
        Assert.False(IsPrefix(e, "[1, 2]"));                        // a literal is written compactly
        // enum beside type: only the values of that type remain.
        var typed = Grammar("""{"type":"string","enum":["a",1,"b"]}""");
        Assert.True(Accepts(typed, "\"a\""));
        Assert.False(Accepts(typed, "1"));
        Assert.True(Accepts(Grammar("""{"const":"x\"y"}"""), "\"x\\\"y\""));
        Assert.True(Accepts(Grammar("""{"type":["string","null"]}"""), "null"));
        Assert.True(Accepts(Grammar("""{"type":"boolean"}"""), "false"));
    }

    [Fact]
    public void StringsTakeEscapesAndOnlyWellFormedUtf8()
    {
        var g = Grammar("""{"type":"string","maxLength":4}""");
        Assert.True(Accepts(g, "\"a\\\"b\\n\""));
        Assert.True(Accepts(g, "\"\\u00e9\\/\""));
        Assert.False(IsPrefix(g, "\"\\x"));
        Assert.False(IsPrefix(g, "\"\\ud800"));              // surrogate escapes are refused
        Assert.False(IsPrefix(g, "\"\t"));                   // raw control characters too
        Assert.False(IsPrefix(g, "\"abcde"));                // maxLength counts escapes as one character
        Assert.True(Accepts(g, "\"a\\u0041\\\\d\""));
        var bytes = new List<byte> { (byte)'"', 0xC0, 0x80 };   // an overlong NUL
        Assert.False(g.AcceptsWhole([.. bytes, (byte)'"']));
        Assert.False(g.AcceptsWhole([(byte)'"', 0xED, 0xA0, 0x80, (byte)'"'])); // an encoded surrogate
        Assert.True(g.AcceptsWhole([(byte)'"', 0xF0, 0x9F, 0x98, 0x80, (byte)'"'])); // U+1F600
    }

    [Fact]
    public void ReferencesRecurseAndUnionsFollowEveryAlternative()
    {
        var g = Grammar("""
            {"$ref":"#/$defs/node","$defs":{"node":{"type":"object","properties":{"v":{"type":"integer"},
             "kids":{"type":"array","items":{"$ref":"#/$defs/node"}}},"required":["v"]}}}
            """);
        Assert.True(Accepts(g, """{"v":1,"kids":[{"v":2},{"v":3,"kids":[]}]}"""));
        Assert.False(Accepts(g, """{"kids":[]}"""));
        var d = Grammar("""{"definitions":{"s":{"type":"string","maxLength":2}},"anyOf":[{"$ref":"#/definitions/s"},{"type":"string","minLength":4}]}""");
        Assert.True(Accepts(d, "\"ab\""));
        Assert.True(Accepts(d, "\"abcd\""));
        Assert.False(Accepts(d, "\"abc\""));                  // neither alternative
        // Recursion is closed by the depth bound: at MaxDepth only the values that open nothing remain.
        var deep = Grammar("""{"$ref":"#/$defs/a","$defs":{"a":{"type":"array","items":{"$ref":"#/$defs/a"}}}}""", new JsonLimits { MaxDepth = 2 });
        Assert.True(Accepts(deep, "[[]]"));
        Assert.False(IsPrefix(deep, "[[["));
    }

    [Theory]
    [InlineData("""{"type":"string","pattern":"^a"}""", "#/pattern")]
    [InlineData("""{"properties":{"a":{"type":"string","format":"email"}}}""", "#/properties/a/format")]
    [InlineData("""{"$ref":"https://example.com/s.json"}""", "#/$ref")]
    [InlineData("""{"allOf":[{"type":"string"},{"maxLength":3}]}""", "#/allOf")]
    [InlineData("""{"if":{"type":"string"},"then":{"maxLength":3}}""", "#/if")]
    [InlineData("""{"type":"object","patternProperties":{"^x":{}}}""", "#/patternProperties")]
    [InlineData("""{"type":"array","items":{"type":"integer","multipleOf":2}}""", "#/items/multipleOf")]
    [InlineData("""{"anyOf":[{"type":"string"},{"not":{}}]}""", "#/anyOf/1/not")]
    [InlineData("""{"$defs":{"a/b":{"type":"string","pattern":"x"}},"$ref":"#/$defs/a~1b"}""", "#/$defs/a~1b/pattern")]
    [InlineData("""{"type":"object","properties":{"a":{"$ref":"#/$defs/a"}},"required":["a"],"$defs":{"a":{"type":"object","properties":{"a":{"$ref":"#/$defs/a"}},"required":["a"]}}}""", "#")]
    [InlineData("""{"enum":[]}""", "#")]
    [InlineData("""{"type":"strin"}""", "#/type")]
    [InlineData("""{"type":"string" """, "#")]
    public void UnsupportedSchemasAreRefusedNamingThePath(string schema, string path)
    {
        var e = Assert.Throws<JsonSchemaException>(() => ResponseFormat.JsonSchema(schema));
        Assert.Equal(path, e.SchemaPath);
        Assert.StartsWith(path + ": ", e.Message);
    }

    [Fact]
    public void JsonObjectModeTakesAnyObjectAndNothingElse()
    {
        var g = ResponseFormat.JsonObject.Grammar!;
        Assert.True(Accepts(g, """{"a":[1,"x",{"b":null}],"c":true}"""));
        Assert.True(Accepts(g, "{}"));
        Assert.False(IsPrefix(g, "["));
        Assert.False(IsPrefix(g, " {"));
    }
}
