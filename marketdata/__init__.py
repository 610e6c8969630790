"""Kootabase market data: L1/L2/L3 books, trades, candles and tickers built from engine
events, with encode-once fan-out to subscribers.

Market data never blocks the engine on a slow subscriber.
"""
