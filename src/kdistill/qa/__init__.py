"""Extractive question answering: data (:mod:`kdistill.qa.data`) and SQuAD's metrics (:mod:`kdistill.qa.metrics`).
Nothing is imported here."""
