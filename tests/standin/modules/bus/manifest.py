{
    'name': 'IM Bus',
    'version': '1.0',
    'category': 'Hidden',
    'depends': ['base', 'web'],
    'installable': True,
    'auto_install': True,
    'license': 'LGPL-3',
}
