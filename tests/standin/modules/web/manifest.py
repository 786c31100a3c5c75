{
    'name': 'Web',
    'category': 'Hidden',
    'version': '1.0',
    'description': "The web client of the stand-in Odoo.",
    'depends': ['base'],
    'auto_install': True,
    'data': [
        'data/neutralize_views.xml',
    ],
    'bootstrap': True,
    'license': 'LGPL-3',
}
