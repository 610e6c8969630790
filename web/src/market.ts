// Markets as exchangeInfo describes them: symbols, assets and their decimals, filters.
import { getJson } from "./api";

export interface Market {
  symbol: string;
  status: string;
  baseAsset: string;
  quoteAsset: string;
  tickSize: string;
  stepSize: string;
}

interface RawSymbol {
  symbol: string;
  status: string;
  baseAsset: string;
  quoteAsset: string;
  filters: { filterType: string; tickSize?: string; stepSize?: string }[];
}

export async function markets(): Promise<Market[]> {
  const info = await getJson<{ symbols: RawSymbol[] }>("/api/v3/exchangeInfo");
  return info.symbols.map((s) => ({
    symbol: s.symbol,
    status: s.status,
    baseAsset: s.baseAsset,
    quoteAsset: s.quoteAsset,
    tickSize: s.filters.find((f) => f.filterType === "PRICE_FILTER")?.tickSize ?? "",
    stepSize: s.filters.find((f) => f.filterType === "LOT_SIZE")?.stepSize ?? "",
  }));
}
