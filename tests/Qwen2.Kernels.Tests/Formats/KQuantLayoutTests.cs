namespace Qwen2.Kernels.Tests;

/// <summary>
/// One super-block of each K-quant built byte by byte from ggml's layout description, with element values worked out
/// by hand (in the comments), so the layout is checked against the description and not only against itself.
/// </summary>
public class KQuantLayoutTests
{
    // Packed scales for Q4_K and Q5_K, sub-blocks 0-7: scales 1, 2, 3, 4, 17, 2, 3, 4 and minimums 0, 1, 2, 3, 35, 0, 0, 0.
    // Bytes 0-3 hold scales 0-3 in their low 6 bits and the top 2 bits of scales 4-7 (17 = 0b01_0001: top bits 01 in
    // byte 0); bytes 4-7 hold minimums 0-3 and the top bits of minimums 4-7 (35 = 0b10_0011: top bits 10 in byte 4);
    // bytes 8-11 hold the low 4 bits of scales 4-7 (low nibble) and of minimums 4-7 (high nibble).
    private static readonly byte[] PackedScales = [0x41, 2, 3, 4, 0x80, 1, 2, 3, 0x31, 0x02, 0x03, 0x04];

    private static float[] Dequantize(WeightType type, byte[] block)
    {
        var y = new float[256];
        KQuantReference.DequantizeBlock(type, block, 0, y);
        return y;
    }

    /// <summary>Q4_K: d = 1, dmin = 0.5; nibble byte i (of 128) has low nibble i mod 16 and high nibble 15 − i mod 16.</summary>
    private static byte[] Q4KBlock()
    {
        var b = new byte[144];
        BitConverter.TryWriteBytes(b.AsSpan(0), (ushort)0x3C00);
        BitConverter.TryWriteBytes(b.AsSpan(2), (ushort)0x3800);
        PackedScales.CopyTo(b, 4);
        for (int i = 0; i < 128; i++) b[16 + i] = (byte)((i & 15) | ((15 - (i & 15)) << 4));
        return b;
    }

    [Fact]
    public void Q4KSuperBlockWorkedByHand()
    {
        var y = Dequantize(WeightType.Q4_K, Q4KBlock());
        Assert.Equal(0f, y[0]);     // sub-block 0 (scale 1, min 0), byte 0's low nibble 0: 1·1·0 − 0.5·0
        Assert.Equal(27.5f, y[33]); // sub-block 1 (scale 2, min 1), byte 1's high nibble 14: 2·14 − 0.5·1
        Assert.Equal(17f, y[70]);   // sub-block 2 (scale 3, min 2), byte 38's low nibble 6: 3·6 − 0.5·2
        Assert.Equal(67.5f, y[133]); // sub-block 4 (scale 17, min 35), byte 69's low nibble 5: 17·5 − 0.5·35
        Assert.Equal(24f, y[163]);  // sub-block 5 (scale 2, min 0), byte 67's high nibble 12: 2·12
        Assert.Equal(12f, y[212]);  // sub-block 6 (scale 3, min 0), byte 116's low nibble 4
        Assert.Equal(0f, y[255]);   // sub-block 7 (scale 4, min 0), byte 127's high nibble 0
    }

    [Fact]
    public void Q5KSuperBlockWorkedByHand()
    {
        // Q4_K's block with 32 bytes of fifth bits before the nibbles: byte l is 0xAA (bits 1, 3, 5, 7) for l < 16 and
        // 0x55 (bits 0, 2, 4, 6) after; bit s of byte l is element 32s + l's fifth bit.
        var q4 = Q4KBlock();
        var b = new byte[176];
        q4.AsSpan(0, 16).CopyTo(b);
        for (int l = 0; l < 32; l++) b[16 + l] = (byte)(l < 16 ? 0xAA : 0x55);
        q4.AsSpan(16, 128).CopyTo(b.AsSpan(48));
        var y = Dequantize(WeightType.Q5_K, b);
        Assert.Equal(0f, y[0]);      // sub-block 0, l = 0: nibble 0, bit 0 of 0xAA clear
        Assert.Equal(59.5f, y[33]);  // sub-block 1, l = 1: nibble 14 + 16 (bit 1 of 0xAA): 2·30 − 0.5·1
        Assert.Equal(17f, y[70]);    // sub-block 2, l = 6: nibble 6, bit 2 of 0xAA clear: 3·6 − 0.5·2
        Assert.Equal(59f, y[84]);    // sub-block 2, l = 20: nibble 4 + 16 (bit 2 of 0x55): 3·20 − 0.5·2
        Assert.Equal(67.5f, y[133]); // sub-block 4, l = 5: nibble 5, bit 4 of 0xAA clear: 17·5 − 0.5·35
        Assert.Equal(56f, y[163]);   // sub-block 5, l = 3: nibble 12 + 16 (bit 5 of 0xAA): 2·28
        Assert.Equal(60f, y[212]);   // sub-block 6, l = 20: nibble 4 + 16 (bit 6 of 0x55): 3·20
        Assert.Equal(0f, y[255]);    // sub-block 7, l = 31: nibble 0, bit 7 of 0x55 clear
    }

    [Fact]
    public void Q6KSuperBlockWorkedByHand()
    {
        // Low bytes 0-127 hold their own index; high bytes are 0xE4 (2-bit fields 0, 1, 2, 3 from bit 0 up) for the
        // first half, 0x1B (3, 2, 1, 0) for the second; scale g is g − 8; d = 0.5. In a half, element 32k + l takes a
        // nibble of low byte l + 32(k mod 2) (the low one for k < 2) and field k of high byte l.
        var b = new byte[210];
        for (int i = 0; i < 128; i++) b[i] = (byte)i;
        for (int l = 0; l < 64; l++) b[128 + l] = (byte)(l < 32 ? 0xE4 : 0x1B);
        for (int g = 0; g < 16; g++) b[192 + g] = (byte)(sbyte)(g - 8);
        BitConverter.TryWriteBytes(b.AsSpan(208), (ushort)0x3800);
        var y = Dequantize(WeightType.Q6_K, b);
        Assert.Equal(128f, y[0]);    // k 0, l 0: nibble 0, field 0: q 0; scale −8: 0.5·(−8)·(0 − 32)
        Assert.Equal(24f, y[40]);    // k 1, l 8: low nibble of byte 40 = 8, field 1: q 24; scale −6: 0.5·(−6)·(−8)
        Assert.Equal(0f, y[70]);     // k 2, l 6: high nibble of byte 6 = 0, field 2: q 32
        Assert.Equal(-9.5f, y[127]); // k 3, l 31: high nibble of byte 63 = 3, field 3: q 51; scale −1: 0.5·(−1)·19
        Assert.Equal(11f, y[150]);   // second half, k 0, l 22: low nibble of byte 86 = 6, field 3: q 54; scale 1: 0.5·22
        Assert.Equal(-24f, y[200]);  // second half, k 2, l 8: high nibble of byte 72 = 4, field 1: q 20; scale 4: 0.5·4·(−12)
        Assert.Equal(-87.5f, y[255]); // second half, k 3, l 31: high nibble of byte 127 = 7, field 0: q 7; scale 7: 0.5·7·(−25)
    }

    [Fact]
    public void WorkedBlockDotsLikeItsDequantizedValues()
    {
        // Activations 1, 0, −1, 0, ... quantize to q = ±127 with d_a = 1/127 (to float32's rounding), so the integer dot
        // with the worked Q4_K block, minimums included, is the double dot of its values to within a few ulps.
        var x = new float[256];
        for (int i = 0; i < 256; i++) x[i] = (i % 4) switch { 0 => 1f, 2 => -1f, _ => 0f };
        var a = new byte[QuantizedActivations.Q8KBytes];
        QuantizedActivations.Quantize(ActivationFormat.Q8K, x, a, Isa.Scalar);
        var w = Q4KBlock();
        var y = Dequantize(WeightType.Q4_K, w);
        double expected = 0, magnitude = 0;
        for (int i = 0; i < 256; i++) { expected += (double)y[i] * x[i]; magnitude += Math.Abs((double)y[i] * x[i]); }
        Assert.NotEqual(0, expected);
        foreach (var isa in IsaSupport.Supported)
            Check.Close(expected, KQuantReference.Dot(WeightType.Q4_K, w, a, 1, isa), magnitude * 1e-6, $"Q4_K {isa}");
    }
}
