namespace Qwen2.Native.Structured;

internal enum NumberPhase { Start, Minus, Zero, Int, Dot, Frac }

/// <summary>
/// A number: -?(0|[1-9][0-9]{0,14})(\.[0-9]{1,15})? (integers without the fraction). No exponent, so every value fits a
/// decimal. With bounds (<see cref="NumberNode.Bounded"/>) a digit is taken only if the value can still end in the
/// range, and a number keeps to 15 significant digits in all; so every frame kept has a way to finish.
/// </summary>
internal sealed record NumberFrame(Frame? Parent, int Depth, JsonGrammar G, NumberNode Node) : Frame(Parent, Depth, G)
{
    public const int MaxDigits = NumberNode.MaxDigits;

    public NumberPhase Phase { get; init; }
    /// <summary>Digits of the part being written: the integer part, then the fraction.</summary>
    public int Digits { get; init; }
    // Bounded only: the sign, the integer part and its digits, the fraction digits so far.
    public bool Negative { get; init; }
    public long Whole { get; init; }
    public int WholeDigits { get; init; }
    public long Fraction { get; init; }

    private bool Integer => Node.Integer;

    public override void Step(byte b, List<Frame> output)
    {
        if (Node.Bounded) { StepBounded(b, output); return; }
        bool digit = b >= '0' && b <= '9';
        switch (Phase)
        {
            case NumberPhase.Start when b == '-':
                output.Add(this with { Phase = NumberPhase.Minus });
                break;
            case NumberPhase.Start:
            case NumberPhase.Minus:
                if (b == '0') Enter(this with { Phase = NumberPhase.Zero, Digits = 1 }, !Integer, output);
                else if (digit) Enter(this with { Phase = NumberPhase.Int, Digits = 1 }, true, output);
                break;
            case NumberPhase.Zero:
            case NumberPhase.Int:
                if (digit && Phase == NumberPhase.Int && Digits < MaxDigits) Enter(this with { Digits = Digits + 1 }, Digits + 1 < MaxDigits || !Integer, output);
                else if (b == '.' && !Integer) output.Add(this with { Phase = NumberPhase.Dot, Digits = 0 });
                break;
            case NumberPhase.Dot:
                if (digit) Enter(this with { Phase = NumberPhase.Frac, Digits = 1 }, true, output);
                break;
            case NumberPhase.Frac:
                if (digit && Digits < MaxDigits) Enter(this with { Digits = Digits + 1 }, Digits + 1 < MaxDigits, output);
                break;
        }
    }

    /// <summary>The number may end here; <paramref name="more"/>: it may also go on.</summary>
    private void Enter(NumberFrame next, bool more, List<Frame> output)
    {
        if (more) output.Add(next);
        Complete(output);
    }

    private void StepBounded(byte b, List<Frame> output)
    {
        var n = Node;
        int d = b - '0';
        bool digit = d is >= 0 and <= 9;
        switch (Phase)
        {
            case NumberPhase.Start when b == '-':
                if (n.CanNegative) output.Add(this with { Phase = NumberPhase.Minus, Negative = true });
                break;
            case NumberPhase.Start:
            case NumberPhase.Minus:
                if (digit) EnterWhole(this with { Phase = d == 0 ? NumberPhase.Zero : NumberPhase.Int, Digits = 1, Whole = d }, output);
                break;
            case NumberPhase.Zero:
            case NumberPhase.Int:
                if (digit && Phase == NumberPhase.Int && Digits < MaxDigits) EnterWhole(this with { Digits = Digits + 1, Whole = Whole * 10 + d }, output);
                else if (b == '.' && !Integer && Digits < MaxDigits && n.FractionOpens(Negative, Whole, Digits))
                    output.Add(this with { Phase = NumberPhase.Dot, WholeDigits = Digits, Digits = 0 });
                break;
            case NumberPhase.Dot:
            case NumberPhase.Frac:
                if (!digit || WholeDigits + Digits >= MaxDigits) break;
                var next = this with { Phase = NumberPhase.Frac, Digits = Digits + 1, Fraction = Fraction * 10 + d };
                if (n.FractionGoesOn(Negative, Whole, WholeDigits, next.Fraction, next.Digits)) output.Add(next);
                if (n.InRange(Negative, NumberNode.Fraction(Whole, next.Fraction, next.Digits))) Complete(output);
                break;
        }
    }

    /// <summary>An integer part written so far: it goes on if it can still reach the range, and ends if it is in it.</summary>
    private void EnterWhole(NumberFrame next, List<Frame> output)
    {
        if (Node.WholeGoesOn(Negative, next.Whole, next.Digits)) output.Add(next);
        if (Node.InRange(Negative, next.Whole * Node.Scale)) Complete(output);
    }
}
