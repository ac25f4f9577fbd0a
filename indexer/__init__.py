"""Tuition indexer: turns CourseMarket and CourseCertificate events into database records."""
