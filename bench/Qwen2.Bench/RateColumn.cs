using System.Globalization;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace Qwen2.Bench;

/// <summary>A column of work per second: what one operation does (bytes, tokens) over its mean time.</summary>
internal abstract class RateColumn(string name, string legend, double perSecondScale, string format) : IColumn
{
    public string Id => GetType().Name;
    public string ColumnName => name;
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => legend;
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public bool IsAvailable(Summary summary) => true;
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var stats = summary[benchmarkCase]?.ResultStatistics;
        double? amount = AmountPerOperation(benchmarkCase);
        if (stats is null || amount is not > 0 || stats.Mean <= 0) return "-";
        // Mean is in nanoseconds.
        return (amount.Value / stats.Mean * 1e9 / perSecondScale).ToString(format, CultureInfo.InvariantCulture);
    }

    /// <summary>What one operation of <paramref name="benchmarkCase"/> does, or null when the column does not apply.</summary>
    protected abstract double? AmountPerOperation(BenchmarkCase benchmarkCase);
}
