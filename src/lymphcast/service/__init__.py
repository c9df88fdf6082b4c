"""The clinical service: the locked model beside PACS and the electronic record."""
