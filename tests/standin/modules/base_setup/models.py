"""What the stand-in's base_setup declares, read (never run) to know that installing
it creates or updates tables."""


class Models:
    _inherit = 'res.config.settings'
