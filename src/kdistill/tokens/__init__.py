"""Token classification (NER): data (:mod:`kdistill.tokens.data`) and entity-level metrics
(:mod:`kdistill.tokens.metrics`). Nothing is imported here."""
