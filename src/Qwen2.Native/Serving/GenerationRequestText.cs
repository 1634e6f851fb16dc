using System.Runtime.CompilerServices;
using Qwen2.Native.Text;

namespace Qwen2.Native.Serving;

/// <summary>Text streaming for <see cref="BatchGenerator"/> requests.</summary>
public static class GenerationRequestText
{
    /// <summary>
    /// The request's tokens as text while they are generated. A character split over several tokens comes out whole;
    /// the pieces joined equal <see cref="Qwen2Tokenizer.Decode"/> of all the generated ids.
    /// </summary>
    /// <param name="request">A submitted request.</param>
    /// <param name="tokenizer">The model's tokenizer.</param>
    /// <param name="skipSpecialTokens">Leave tokens flagged special (such as &lt;|im_end|&gt;) out of the text.</param>
    /// <param name="cancellationToken">Stops reading (the request itself goes on; use <see cref="GenerationRequest.Cancel"/> to end it).</param>
    public static async IAsyncEnumerable<string> ReadTextAsync(this GenerationRequest request, Qwen2Tokenizer tokenizer, bool skipSpecialTokens = true,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(tokenizer);
        var decoder = tokenizer.CreateStreamingDecoder(skipSpecialTokens);
        await foreach (int id in request.ReadTokensAsync(cancellationToken))
        {
            string piece = decoder.Append(id);
            if (piece.Length > 0) yield return piece;
        }
        string rest = decoder.Flush();
        if (rest.Length > 0) yield return rest;
    }
}
