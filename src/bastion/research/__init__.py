"""The deep research system: planner, parallel researchers, critic and cited synthesis.

Built in steps; this package holds what the research agents share: the sources a search
brings back (`sources`), the Tavily web search provider (`tavily`), with more to come (corpus
and retrieval, providers, credibility, the offline planner and synthesizer, the agents).
"""
