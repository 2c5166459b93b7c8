"""CAPO Lab's service layer and CLI: joins ``capo`` (science) to ``storage`` (persistence)."""
