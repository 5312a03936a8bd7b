"""Everything that scores a document: language ID, quality and domain classifiers."""
