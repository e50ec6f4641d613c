"""Route planning over a multimodal network of ports, airports, sea lanes, road and air lanes."""
