using System.Text.Json;
using Qwen2.Native.Text;

namespace Qwen2.Native.Tests;

/// <summary>PythonJson against Python 3's <c>json.dumps(json.loads(literal))</c>, which transformers' tojson filter prints tool arguments with.</summary>
public class PythonJsonTests
{
    [Theory]
    // Expected values printed by Python 3.11: python3 -c "import json; print(json.dumps(json.loads(LITERAL)))".
    [InlineData("1.5", "1.5")]
    [InlineData("100.0", "100.0")]
    [InlineData("1e-05", "1e-05")]
    [InlineData("1.5e20", "1.5e+20")]
    [InlineData("0.0001", "0.0001")]
    [InlineData("1e16", "1e+16")]
    [InlineData("123456789012345.6", "123456789012345.6")]
    [InlineData("0.1", "0.1")]
    [InlineData("2.5e-7", "2.5e-07")]
    [InlineData("1e15", "1000000000000000.0")]
    [InlineData("-3.25", "-3.25")]
    [InlineData("5e-324", "5e-324")]
    [InlineData("1.7976931348623157e308", "1.7976931348623157e+308")]
    [InlineData("0.30000000000000004", "0.30000000000000004")]
    [InlineData("-0.0", "-0.0")]
    [InlineData("1E2", "100.0")]
    [InlineData("12345678901234567890", "12345678901234567890")]
    [InlineData("-0", "0")]
    [InlineData("{\"a\":[1,{\"b\":\"é\\n\\u0001\\\"\"}],\"c\":null,\"d\":true}", "{\"a\": [1, {\"b\": \"é\\n\\u0001\\\"\"}], \"c\": null, \"d\": true}")]
    public void PrintsAsPythonsJsonDumps(string literal, string python)
    {
        using var doc = JsonDocument.Parse(literal);
        Assert.Equal(python, PythonJson.Dumps(doc.RootElement));
    }
}
