using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Qwen2.Kernels.Tests;

/// <summary>
/// The block-quantized formats one by one: dequantization against the layouts decoded here, activation quantization
/// byte for byte on every path, and each format's dot product (alone and for several tokens) on every path against
/// its scalar twin's bits and against the float64 dot of the decoded weights with the unquantized activations.
/// </summary>
public unsafe class QuantizedFormatTests
{
    /// <summary>The format's entry points, through the one table that maps a type to its format.</summary>
    private static QuantizedProduct.Kind Format(WeightType type) => QuantizedProduct.Format(type);

    public static TheoryData<WeightType> Types()
    {
        var data = new TheoryData<WeightType>();
        foreach (var t in QuantizedData.Types) data.Add(t);
        return data;
    }

    public static TheoryData<Isa, WeightType> IsaTypes()
    {
        var data = new TheoryData<Isa, WeightType>();
        foreach (var isa in IsaSupport.Supported)
            foreach (var t in QuantizedData.Types) data.Add(isa, t);
        return data;
    }

    [Fact]
    public void ScaleConversionIsExactForEveryBinary16()
    {
        Span<byte> b = stackalloc byte[2];
        for (int h = 0; h < 65536; h++)
        {
            MemoryMarshal.Write(b, (ushort)h);
            float got = QuantMath.Half(ref b[0]), expected = (float)BitConverter.UInt16BitsToHalf((ushort)h);
            Check.SameValue(expected, got, $"binary16 0x{h:X4}");
            if (float.IsFinite(expected)) Check.Close(Formats.HalfBitsToDouble((ushort)h), got, 0, $"binary16 0x{h:X4} vs its fields");
        }
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void DequantizationIsEachBlocksScalarDequantizationAndMatchesTheLayout(WeightType type)
    {
        const int Blocks = 40;
        var rnd = new Random(Cases.Seed(21, (int)type));
        int size = WeightTypes.BlockSize(type), bytes = WeightTypes.BlockBytes(type);
        var data = QuantizedData.RandomBlocks(rnd, type, Blocks);
        var all = new float[Blocks * size];
        WeightTypes.ToSingle(type, data, all);
        var one = new float[size];
        var ops = Format(type);
        for (int b = 0; b < Blocks; b++)
        {
            ops.DequantizeBlock(ref data[b * bytes], one);
            Check.BitsEqual(one, all.AsSpan(b * size, size), $"{type} block {b}: ToSingle vs DequantizeBlock");
        }
        var (exact, terms) = QuantizedData.Decode(type, data, all.Length);
        // ggml's float arithmetic rounds a product and a difference: at most two half-ulps of the terms.
        for (int i = 0; i < all.Length; i++)
            Check.Close(exact[i], all[i], 1.2e-7 * terms[i], $"{type} element {i} vs the layout decoded in double");
        Assert.Throws<ArgumentException>(() => WeightTypes.ToSingle(type, data.AsSpan(0, bytes - 1), new float[size]));
        Assert.Throws<ArgumentException>(() => WeightTypes.ToSingle(type, data, new float[size + 1]));
    }

    /// <summary>Rows of activations with the awkward blocks: all zero, tiny, huge, and exact ties of the rounding (max 127, step 1).</summary>
    private static float[] Activations(Random rnd, int n, int blockSize)
    {
        var x = Cases.Uniform(rnd, n, -3, 3);
        int blocks = n / blockSize;
        for (int b = 0; b < blocks; b++)
        {
            var blk = x.AsSpan(b * blockSize, blockSize);
            switch (b % 5)
            {
                case 1: blk.Clear(); break;
                case 2: for (int i = 0; i < blk.Length; i++) blk[i] *= 1e-30f; break;
                case 3: for (int i = 0; i < blk.Length; i++) blk[i] *= 1e30f; break;
                case 4:
                    for (int i = 0; i < blk.Length; i++) blk[i] = rnd.Next(-126, 126) + 0.5f;
                    blk[0] = 127;
                    break;
            }
        }
        return x;
    }

    [Theory]
    [InlineData(0)] // ActivationFormat.Q8, which the test's public signature cannot name
    [InlineData(1)] // ActivationFormat.Q8K
    public void ActivationQuantizationGivesTheSameBytesOnEveryPath(int formatIndex)
    {
        var format = (ActivationFormat)formatIndex;
        int size = QuantizedActivations.BlockSize(format), bytes = QuantizedActivations.BlockBytes(format);
        var rnd = new Random(Cases.Seed(22, (int)format));
        foreach (int blocks in new[] { 1, 2, 3, 5, 8, 13, 40 })
        {
            var x = Activations(rnd, blocks * size, size);
            var twin = new byte[blocks * bytes];
            QuantizedActivations.Quantize(format, x, twin, Isa.Scalar);
            for (int b = 0; b < blocks; b++) CheckBlock(format, x.AsSpan(b * size, size), twin.AsSpan(b * bytes, bytes), $"{format} block {b}");
            foreach (var isa in IsaSupport.Supported)
            {
                var got = new byte[blocks * bytes + 7];
                QuantizedActivations.Quantize(format, x, got, isa);
                Assert.True(twin.AsSpan().SequenceEqual(got.AsSpan(0, twin.Length)), $"{format} {isa} bytes differ from the scalar twin's ({blocks} blocks)");
                Assert.All(got[twin.Length..], v => Assert.Equal(0, v));
            }
        }
        Assert.Throws<ArgumentException>(() => QuantizedActivations.Quantize(format, new float[size + 1], new byte[2 * bytes], Isa.Scalar));
        Assert.Throws<ArgumentException>(() => QuantizedActivations.Quantize(format, new float[size], new byte[bytes - 1], Isa.Scalar));
    }

    /// <summary>
    /// The block's definition: d = max|x| / 127, each q within half a step of x / d, and d · Σq, or the sums of each 16
    /// and (twice) of each 32.
    /// </summary>
    private static void CheckBlock(ActivationFormat format, ReadOnlySpan<float> x, ReadOnlySpan<byte> block, string what)
    {
        float amax = 0;
        foreach (float v in x) amax = Math.Max(amax, Math.Abs(v));
        float d = MemoryMarshal.Read<float>(block);
        Assert.Equal(amax / 127f, d);
        int off = format == ActivationFormat.Q8 ? QuantizedActivations.Q8Values : QuantizedActivations.Q8KValues;
        long sum = 0;
        for (int i = 0; i < x.Length; i++)
        {
            int q = (sbyte)block[off + i];
            sum += q;
            if (d != 0) Assert.True(Math.Abs(x[i] / (double)d - q) <= 0.5 + 1e-5, $"{what}[{i}]: q {q} for x/d {x[i] / (double)d}");
            else Assert.Equal(0, q);
        }
        if (format == ActivationFormat.Q8) Assert.Equal(d * sum, MemoryMarshal.Read<float>(block[4..]));
        else
        {
            for (int g = 0; g < 16; g++)
            {
                int s = 0;
                for (int i = 16 * g; i < 16 * g + 16; i++) s += (sbyte)block[off + i];
                Assert.Equal(s, MemoryMarshal.Read<short>(block[(QuantizedActivations.Q8KSums + 2 * g)..]));
            }
            for (int p = 0; p < 8; p++)
            {
                int s = 0;
                for (int i = 32 * p; i < 32 * p + 32; i++) s += (sbyte)block[off + i];
                Assert.Equal(s, MemoryMarshal.Read<short>(block[(QuantizedActivations.Q8KPairs + 2 * p)..]));
                Assert.Equal(s, MemoryMarshal.Read<short>(block[(QuantizedActivations.Q8KPairs + 16 + 2 * p)..]));
            }
        }
    }

    /// <summary>
    /// Rows of 1 to 40 blocks of random bits and scales: every path's Dot is the scalar twin's bits, DotTokens of 1 to 4
    /// tokens is Dot of each token, the public MatMul.Dot (which quantizes on the path too) is the same, and the result is
    /// within the stated bound of the float64 dot of the decoded weights with the unquantized activations.
    /// </summary>
    [Theory]
    [MemberData(nameof(IsaTypes))]
    public void DotIsTheScalarTwinsBitsOnEveryPathAndWithinTheBound(Isa isa, WeightType type)
    {
        var ops = Format(type);
        var rnd = new Random(Cases.Seed(23, (int)isa, (int)type));
        int size = WeightTypes.BlockSize(type), bytes = WeightTypes.BlockBytes(type);
        int aBytes = QuantizedActivations.BlockBytes(ops.Activation);
        int perActivation = QuantizedActivations.BlockSize(ops.Activation);
        Span<float> dst = stackalloc float[4];
        for (int blocks = 1; blocks <= 40; blocks += QuantizedData.IsK(type) ? 3 : 1)
        {
            int n = blocks * size;
            var w = QuantizedData.RandomBlocks(rnd, type, blocks);
            var (exact, terms) = QuantizedData.Decode(type, w, n);
            nint stride = n / perActivation * aBytes;
            var xs = Enumerable.Range(0, 4).Select(_ => Activations(rnd, n, perActivation)).ToArray();
            var a = new byte[4 * stride];
            for (int t = 0; t < 4; t++) QuantizedActivations.Quantize(ops.Activation, xs[t], a.AsSpan((int)(t * stride)), Isa.Scalar);
            var twins = new float[4];
            for (int t = 0; t < 4; t++)
            {
                twins[t] = ops.Dot(ref w[0], ref a[t * stride], blocks, Isa.Scalar);
                float got = ops.Dot(ref w[0], ref a[t * stride], blocks, isa);
                Check.BitsEqual([twins[t]], [got], $"{type} {isa} Dot of {blocks} blocks, token {t}");
                float pub = Paths.Forced(isa, $"{type} MatMul.Dot", () => MatMul.Dot(w, type, xs[t], isa));
                Check.BitsEqual([twins[t]], [pub], $"{type} {isa} MatMul.Dot of {blocks} blocks, token {t}");
                var (s, bound) = QuantizedData.Reference(type, exact, terms, xs[t]);
                Check.Close(s, got, bound, $"{type} {isa} {blocks} blocks token {t} vs the float64 dot");
            }
            // Four rows, the row itself at stride 0 and then four distinct rows: each is that row's Dot of token 0.
            var rows = new byte[4 * w.Length + 3 * 5];
            nint rowStride = w.Length + 5; // not a whole number of blocks apart, as a quarter of a thread's rows may be
            var twins4 = new float[4];
            for (int k = 0; k < 4; k++)
            {
                var wk = k == 0 ? w : QuantizedData.RandomBlocks(rnd, type, blocks);
                wk.CopyTo(rows, (int)(k * rowStride));
                twins4[k] = ops.Dot(ref wk[0], ref a[0], blocks, Isa.Scalar);
            }
            dst.Fill(float.NaN);
            ops.Dot4Rows(ref rows[0], rowStride, ref a[0], blocks, ref dst[0], isa);
            Check.BitsEqual(twins4, dst, $"{type} {isa} Dot4Rows of {blocks} blocks");
            for (int tokens = 1; tokens <= 4; tokens++)
            {
                dst.Fill(float.NaN);
                ops.DotTokens(ref w[0], ref a[0], stride, tokens, blocks, dst, isa);
                Check.BitsEqual(twins.AsSpan(0, tokens), dst[..tokens], $"{type} {isa} DotTokens({tokens}) of {blocks} blocks");
                for (int t = tokens; t < 4; t++) Assert.True(float.IsNaN(dst[t]), $"{type} {isa} DotTokens({tokens}) wrote dst[{t}]");
            }
        }
    }

    /// <summary>
    /// Both integer-product instructions of the 256-bit path against the scalar twin: vpmaddubsw + vpmaddwd everywhere
    /// AVX2 runs, vpdpbusd wherever AVX-VNNI is present (this test is where such a CPU proves it).
    /// </summary>
    [Fact]
    public void BothIntegerProductInstructionsGiveTheScalarTwinsBits()
    {
        Products<Q8_0Format>(WeightType.Q8_0);
        Products<Q4_0Format>(WeightType.Q4_0);
        Products<Q4_1Format>(WeightType.Q4_1);
        Products<Q5_0Format>(WeightType.Q5_0);
        Products<Q5_1Format>(WeightType.Q5_1);
    }

    private static void Products<T>(WeightType type) where T : IBlock32
    {
        var rnd = new Random(Cases.Seed(24, (int)type));
        for (int blocks = 1; blocks <= 40; blocks++)
        {
            var w = QuantizedData.RandomBlocks(rnd, type, blocks);
            var x = Activations(rnd, blocks * 32, 32);
            var a = new byte[blocks * QuantizedActivations.Q8Bytes];
            QuantizedActivations.Quantize(ActivationFormat.Q8, x, a, Isa.Scalar);
            float twin = Block32.DotScalar<T>(ref w[0], ref a[0], blocks);
            if (!System.Runtime.Intrinsics.X86.Avx2.IsSupported)
            {
                Assert.Throws<PlatformNotSupportedException>(() => Block32.DotV256<T>(ref w[0], ref a[0], blocks, vnni: false));
                return;
            }
            Check.BitsEqual([twin], [Block32.DotV256<T>(ref w[0], ref a[0], blocks, vnni: false)], $"{type} vpmaddubsw, {blocks} blocks");
            if (System.Runtime.Intrinsics.X86.AvxVnni.IsSupported)
                Check.BitsEqual([twin], [Block32.DotV256<T>(ref w[0], ref a[0], blocks, vnni: true)], $"{type} vpdpbusd, {blocks} blocks");
            else
                Assert.Throws<PlatformNotSupportedException>(() => Block32.DotV256<T>(ref w[0], ref a[0], blocks, vnni: true));

            // The four-row decode, whose signed formats take offset values and row pairs in halves.
            nint rowBytes = blocks * T.BlockBytes;
            var rows = QuantizedData.RandomBlocks(rnd, type, 4 * blocks);
            var twins = new float[4];
            for (int k = 0; k < 4; k++) twins[k] = Block32.DotScalar<T>(ref rows[k * rowBytes], ref a[0], blocks);
            var dst = new float[4];
            Block32.Dot4RowsV256<T>(ref rows[0], rowBytes, ref a[0], blocks, ref dst[0], vnni: false);
            Check.BitsEqual(twins, dst, $"{type} four rows, vpmaddubsw, {blocks} blocks");
            if (System.Runtime.Intrinsics.X86.AvxVnni.IsSupported)
            {
                Block32.Dot4RowsV256<T>(ref rows[0], rowBytes, ref a[0], blocks, ref dst[0], vnni: true);
                Check.BitsEqual(twins, dst, $"{type} four rows, vpdpbusd, {blocks} blocks");
            }
            else
                Assert.Throws<PlatformNotSupportedException>(() => Block32.Dot4RowsV256<T>(ref rows[0], rowBytes, ref a[0], blocks, ref dst[0], vnni: true));
        }
    }

    /// <summary>
    /// The row-pair unpacking of the signed formats (what the VNNI decode and the offset paths read) against the one-block
    /// unpacking: Low is both blocks' elements 0-15, High their elements 16-31, each plus the format's offset.
    /// </summary>
    [Fact]
    public void OffsetHalvesAreBothBlocksOffsetValuesInHalves()
    {
        if (!System.Runtime.Intrinsics.X86.Avx2.IsSupported)
        {
            // Only the 256-bit paths unpack row pairs, and they refuse to run without AVX2.
            var w = new byte[4 * Q8_0Format.BlockBytes];
            var a = new byte[QuantizedActivations.Q8Bytes];
            var dst = new float[4];
            Assert.Throws<PlatformNotSupportedException>(() => Block32.Dot4RowsV256<Q8_0Format>(ref w[0], Q8_0Format.BlockBytes, ref a[0], 1, ref dst[0], vnni: false));
            return;
        }
        OffsetHalves<Q8_0Format>(WeightType.Q8_0);
        OffsetHalves<Q4_0Format>(WeightType.Q4_0);
        OffsetHalves<Q5_0Format>(WeightType.Q5_0);
    }

    private static void OffsetHalves<T>(WeightType type) where T : IBlock32
    {
        var rnd = new Random(Cases.Seed(26, (int)type));
        for (int trial = 0; trial < 200; trial++)
        {
            var w = QuantizedData.RandomBlocks(rnd, type, 2);
            var first = T.Offset256(ref w[0]);
            var second = T.Offset256(ref w[T.BlockBytes]);
            var (low, high) = T.OffsetHalves256(ref w[0], ref w[T.BlockBytes]);
            Assert.Equal(Vector256.Create(first.GetLower(), second.GetLower()), low);
            Assert.Equal(Vector256.Create(first.GetUpper(), second.GetUpper()), high);
        }
    }

    /// <summary>
    /// The prefill tiles (four rows by two tokens for Q8_0, two by four for the others) against the scalar twin of
    /// each (row, token): on every path, and through both integer-product instructions where the CPU has them.
    /// </summary>
    [Fact]
    public void TilesAreEachRowAndTokensScalarDot()
    {
        Tiles<Q8_0Format>(WeightType.Q8_0);
        Tiles<Q4_0Format>(WeightType.Q4_0);
        Tiles<Q4_1Format>(WeightType.Q4_1);
        Tiles<Q5_0Format>(WeightType.Q5_0);
        Tiles<Q5_1Format>(WeightType.Q5_1);
    }

    private static unsafe void Tiles<T>(WeightType type) where T : IBlock32
    {
        var rnd = new Random(Cases.Seed(25, (int)type));
        int rows = T.TileRows, tokens = Block32.TileTokens<T>();
        Assert.Equal(8, rows * tokens);
        for (int blocks = 1; blocks <= 40; blocks += 3)
        {
            nint rowBytes = blocks * T.BlockBytes, stride = blocks * QuantizedActivations.Q8Bytes;
            var w = QuantizedData.RandomBlocks(rnd, type, blocks * rows);
            var a = new byte[tokens * stride];
            for (int t = 0; t < tokens; t++)
                QuantizedActivations.Quantize(ActivationFormat.Q8, Activations(rnd, blocks * 32, 32), a.AsSpan((int)(t * stride)), Isa.Scalar);
            // y[t * yStride + r], with a stride wider than the tile so a write outside it shows.
            const int YStride = 5;
            var twins = new float[tokens * YStride];
            for (int t = 0; t < tokens; t++)
                for (int r = 0; r < rows; r++)
                    twins[t * YStride + r] = Block32.DotScalar<T>(ref w[r * rowBytes], ref a[t * stride], blocks);
            void Run(string what, Action<nint> tile) => CheckTile(twins, rows, tokens, YStride, $"{type} {what}, {blocks} blocks", tile);
            foreach (var isa in IsaSupport.Supported)
                Run($"DotTile on {isa}", py => Block32.DotTile<T>(ref w[0], rowBytes, ref a[0], stride, blocks, (float*)py, YStride, isa));
            if (!System.Runtime.Intrinsics.X86.Avx2.IsSupported) continue;
            Run("vpmaddubsw tile", py => Block32.DotTile256<T>(ref w[0], rowBytes, ref a[0], stride, blocks, (float*)py, YStride, vnni: false));
            if (System.Runtime.Intrinsics.X86.AvxVnni.IsSupported)
                Run("vpdpbusd tile", py => Block32.DotTile256<T>(ref w[0], rowBytes, ref a[0], stride, blocks, (float*)py, YStride, vnni: true));
        }
    }

    /// <summary>
    /// The signed formats' 512-bit tile (four rows by four tokens, two rows to a vector) against the scalar twin of
    /// each (row, token), with activation blocks that hold the extremes, on any AVX-512 CPU (production takes it only
    /// where <see cref="WideTiles.Preferred"/>).
    /// </summary>
    [Fact]
    public void WideTilesAreEachRowAndTokensScalarDot()
    {
        if (!System.Runtime.Intrinsics.X86.Avx512BW.IsSupported || !System.Runtime.Intrinsics.X86.Avx512DQ.IsSupported)
        {
            Assert.Throws<PlatformNotSupportedException>(() => WideTile<Q8_0Format>(WeightType.Q8_0));
            return;
        }
        WideTile<Q8_0Format>(WeightType.Q8_0);
        WideTile<Q4_0Format>(WeightType.Q4_0);
        WideTile<Q5_0Format>(WeightType.Q5_0);
    }

    private static unsafe void WideTile<T>(WeightType type) where T : IBlock32
    {
        var rnd = new Random(Cases.Seed(27, (int)type));
        const int Rows = Block32.WideRows, Tokens = Block32.WideTokens, YStride = 5;
        for (int blocks = 1; blocks <= 40; blocks += 3)
        {
            // One spare block after each row and each token, so a stride mistaken for a length shows.
            nint rowBytes = (blocks + 1) * T.BlockBytes, stride = (blocks + 1) * QuantizedActivations.Q8Bytes;
            var w = QuantizedData.RandomBlocks(rnd, type, (blocks + 1) * Rows);
            var a = new byte[Tokens * stride];
            for (int t = 0; t < Tokens; t++)
                QuantizedActivations.Quantize(ActivationFormat.Q8, Activations(rnd, blocks * 32, 32), a.AsSpan((int)(t * stride)), Isa.Scalar);
            var twins = new float[Tokens * YStride];
            for (int t = 0; t < Tokens; t++)
                for (int r = 0; r < Rows; r++)
                    twins[t * YStride + r] = Block32.DotScalar<T>(ref w[r * rowBytes], ref a[t * stride], blocks);
            CheckTile(twins, Rows, Tokens, YStride, $"{type} 512-bit tile, {blocks} blocks",
                py => Block32.DotTile512<T>(ref w[0], rowBytes, ref a[0], stride, blocks, (float*)py, YStride));
        }
    }

    /// <summary>
    /// The K-quants' prefill tile (two rows by four tokens) against the scalar twin of each (row, token), on every path
    /// and at 512 bits on any AVX-512 CPU (production takes that only where <see cref="WideTiles.Preferred"/>):
    /// random blocks with zero, subnormal and normal binary16 scales, the awkward activation blocks, and rows and tokens
    /// further apart than their blocks, so a stride mistaken for a length shows.
    /// </summary>
    [Fact]
    public void KQuantTilesAreEachRowAndTokensScalarDot()
    {
        KTiles<Q4KFormat, ScaleMinKernels.Tile<Q4KFormat>>(WeightType.Q4_K);
        KTiles<Q5KFormat, ScaleMinKernels.Tile<Q5KFormat>>(WeightType.Q5_K);
        KTiles<Q6KFormat, Q6KFormat.Tile>(WeightType.Q6_K);
    }

    private static void KTiles<TQ, TK>(WeightType type) where TQ : IQuantFormat where TK : IKTileKernel
    {
        var rnd = new Random(Cases.Seed(26, (int)type));
        const int Rows = KTile.Rows, Tokens = KTile.Tokens, YStride = 5;
        for (int blocks = 1; blocks <= 11; blocks += 2)
        {
            // One spare block of random bytes after each row and each token.
            nint rowBytes = (blocks + 1) * TQ.BlockBytes, stride = (blocks + 1) * QuantizedActivations.Q8KBytes;
            var w = QuantizedData.RandomBlocks(rnd, type, (blocks + 1) * Rows);
            // Every other size: all binary16 scales subnormal, as the small dmin of real files often are.
            if (blocks % 4 == 3)
                for (int b = 0; b < (blocks + 1) * Rows; b++)
                    foreach (int f in type == WeightType.Q6_K ? [208] : new[] { 0, 2 })
                        MemoryMarshal.Write(w.AsSpan(b * TQ.BlockBytes + f), (ushort)((rnd.Next(2) << 15) | rnd.Next(1, 0x400)));
            var a = new byte[Tokens * stride];
            rnd.NextBytes(a);
            for (int t = 0; t < Tokens; t++)
                QuantizedActivations.Quantize(ActivationFormat.Q8K, Activations(rnd, blocks * 256, 256),
                    a.AsSpan((int)(t * stride), blocks * QuantizedActivations.Q8KBytes), Isa.Scalar);
            var twins = new float[Tokens * YStride];
            for (int t = 0; t < Tokens; t++)
                for (int r = 0; r < Rows; r++)
                    twins[t * YStride + r] = TQ.Dot(ref w[r * rowBytes], ref a[t * stride], blocks, Isa.Scalar);
            void Run(string what, Action<nint> tile) => CheckTile(twins, Rows, Tokens, YStride, $"{type} {what}, {blocks} blocks", tile);
            foreach (var isa in IsaSupport.Supported)
                Run($"DotTile on {isa}", py => KTile.DotTile<TQ, TK>(ref w[0], rowBytes, ref a[0], stride, blocks, (float*)py, YStride, isa));
            if (System.Runtime.Intrinsics.X86.Avx2.IsSupported)
            {
                Run("256-bit tile, vpmaddwd", py => KTile.Run<TK, PairProducts>(ref w[0], rowBytes, ref a[0], stride, blocks, (float*)py, YStride));
                Run("256-bit tile, vpdpwssd where AVX-VNNI is", py => KTile.Run<TK, QuadProducts>(ref w[0], rowBytes, ref a[0], stride, blocks, (float*)py, YStride));
            }
            if (System.Runtime.Intrinsics.X86.Avx512BW.IsSupported && System.Runtime.Intrinsics.X86.Avx512DQ.IsSupported)
                Run("512-bit tile", py => KTile.Run512<TK>(ref w[0], rowBytes, ref a[0], stride, blocks, (float*)py, YStride));
            else
                Assert.Throws<PlatformNotSupportedException>(() => KTile.Run512<TK>(ref w[0], rowBytes, ref a[0], stride, blocks, null, YStride));
        }
    }

    /// <summary>
    /// Runs a tile into y[t · <paramref name="yStride"/> + r] filled with NaN: each (row, token) must be its twin's bits,
    /// and the lanes past the tile's rows still NaN.
    /// </summary>
    private static void CheckTile(float[] twins, int rows, int tokens, int yStride, string what, Action<nint> tile)
    {
        var y = new float[tokens * yStride];
        Array.Fill(y, float.NaN);
        fixed (float* py = y) tile((nint)py);
        for (int t = 0; t < tokens; t++)
        {
            Check.BitsEqual(twins.AsSpan(t * yStride, rows), y.AsSpan(t * yStride, rows), $"{what}, token {t}");
            for (int r = rows; r < yStride; r++) Assert.True(float.IsNaN(y[t * yStride + r]), $"{what}: wrote outside its tile");
        }
    }
}
