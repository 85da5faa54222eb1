"""The YAML catalogue: schema, validation and the immutable model."""

from bot.catalogue.loader import CatalogueError, load_catalogue, validate
from bot.catalogue.model import TOPICS, Catalogue, Offer, OfferText, Office, OfficeText, Topic
from bot.paths import CATALOGUE_DIR as DEFAULT_CATALOGUE

__all__ = ["DEFAULT_CATALOGUE", "TOPICS", "Catalogue", "CatalogueError", "Offer", "OfferText",
           "Office", "OfficeText", "Topic", "load_catalogue", "validate"]
