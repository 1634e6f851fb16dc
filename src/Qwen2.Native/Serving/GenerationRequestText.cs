using System.Runtime.CompilerServices;
using Qwen2.Native.Generation;
using Qwen2.Native.Text;

namespace Qwen2.Native.Serving;

/// <summary>Text streaming for <see cref="BatchGenerator"/> requests.</summary>
public static class GenerationRequestText
{
    /// <summary>
    /// The request's tokens as text while they are generated, decoded with the tokenizer of the pipeline its generator
    /// was made from. A character split over several tokens comes out whole; the pieces joined equal
    /// <see cref="Qwen2Tokenizer.Decode"/> of all the generated ids.
    /// </summary>
    /// <param name="request">A request submitted to a generator made from a <see cref="Qwen2Pipeline"/>.</param>
    /// <param name="skipSpecialTokens">Leave tokens flagged special (such as &lt;|im_end|&gt;) out of the text.</param>
    /// <param name="cancellationToken">Stops reading (the request itself goes on; use <see cref="GenerationRequest.Cancel"/> to end it).</param>
    /// <exception cref="InvalidOperationException">The generator was made from a model alone, so it has no tokenizer.</exception>
    public static IAsyncEnumerable<string> ReadTextAsync(this GenerationRequest request, bool skipSpecialTokens = true, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var tokenizer = request.Owner.Pipeline?.Tokenizer
            ?? throw new InvalidOperationException("the request's generator was made from a model alone and has no tokenizer; make it from a Qwen2Pipeline to read text, or read ids with ReadTokensAsync");
        return Read(request, tokenizer, skipSpecialTokens, cancellationToken);
    }

    private static async IAsyncEnumerable<string> Read(GenerationRequest request, Qwen2Tokenizer tokenizer, bool skipSpecialTokens,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var decoder = tokenizer.CreateStreamingDecoder(skipSpecialTokens);
        await foreach (int id in request.ReadTokensAsync(cancellationToken))
        {
            string piece = decoder.AppendGenerated(id);
            if (piece.Length > 0) yield return piece;
        }
        string rest = decoder.Flush();
        if (rest.Length > 0) yield return rest;
    }
}
