// Candles with volume, and the depth chart, on TradingView's lightweight-charts. Prices and
// quantities become floats here only as chart coordinates (decimal.chartNumber).
import {
  AreaSeries,
  CandlestickSeries,
  type CandlestickData,
  createChart,
  createOptionsChart,
  HistogramSeries,
  type IChartApi,
  type IChartApiBase,
  type ISeriesApi,
  type UTCTimestamp,
} from "lightweight-charts";
import type { Level } from "./book";
import { add, chartNumber } from "./decimal";

const THEME = {
  layout: { background: { color: "#10151c" }, textColor: "#c9d1d9", attributionLogo: false },
  grid: { vertLines: { color: "#1c2430" }, horzLines: { color: "#1c2430" } },
  autoSize: true,
};

export interface Candle {
  t: number;
  o: string;
  h: string;
  l: string;
  c: string;
  v: string;
}

export class CandleChart {
  private readonly chart: IChartApi;
  private readonly candles: ISeriesApi<"Candlestick">;
  private readonly volume: ISeriesApi<"Histogram">;

  constructor(el: HTMLElement) {
    this.chart = createChart(el, {
      ...THEME,
      timeScale: { timeVisible: true, secondsVisible: false, barSpacing: 10 },
    });
    this.candles = this.chart.addSeries(CandlestickSeries, {
      upColor: "#2ea043",
      downColor: "#f85149",
      wickUpColor: "#2ea043",
      wickDownColor: "#f85149",
      borderVisible: false,
    });
    this.volume = this.chart.addSeries(HistogramSeries, {
      priceScaleId: "",
      priceFormat: { type: "volume" },
      color: "#3d5a80",
    });
    this.volume.priceScale().applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
  }

  private static bar(k: Candle): CandlestickData<UTCTimestamp> {
    return {
      time: (k.t / 1000) as UTCTimestamp,
      open: chartNumber(k.o),
      high: chartNumber(k.h),
      low: chartNumber(k.l),
      close: chartNumber(k.c),
    };
  }

  set(rows: Candle[]): void {
    this.candles.setData(rows.map(CandleChart.bar));
    this.volume.setData(
      rows.map((k) => ({ time: (k.t / 1000) as UTCTimestamp, value: chartNumber(k.v) })),
    );
    if (rows.length > 60) this.chart.timeScale().fitContent();
    else this.chart.timeScale().scrollToRealTime();
  }

  update(k: Candle): void {
    this.candles.update(CandleChart.bar(k));
    this.volume.update({ time: (k.t / 1000) as UTCTimestamp, value: chartNumber(k.v) });
  }
}

/** Cumulative depth, price on the horizontal axis; sums are exact decimals before plotting. */
export class DepthChart {
  private readonly chart: IChartApiBase<number>;
  private readonly bids: ISeriesApi<"Area", number>;
  private readonly asks: ISeriesApi<"Area", number>;

  constructor(el: HTMLElement) {
    this.chart = createOptionsChart(el, THEME);
    this.bids = this.chart.addSeries(AreaSeries, {
      lineColor: "#2ea043",
      topColor: "rgba(46,160,67,0.4)",
      bottomColor: "rgba(46,160,67,0.05)",
      lineType: 1,
    });
    this.asks = this.chart.addSeries(AreaSeries, {
      lineColor: "#f85149",
      topColor: "rgba(248,81,73,0.4)",
      bottomColor: "rgba(248,81,73,0.05)",
      lineType: 1,
    });
  }

  private static cumulative(levels: Level[]): { time: number; value: number }[] {
    let sum = "0";
    return levels.map(([p, q]) => {
      sum = add(sum, q);
      return { time: chartNumber(p), value: chartNumber(sum) };
    });
  }

  set(bids: Level[], asks: Level[]): void {
    this.bids.setData(DepthChart.cumulative(bids).reverse());
    this.asks.setData(DepthChart.cumulative(asks));
    this.chart.timeScale().fitContent();
  }
}
