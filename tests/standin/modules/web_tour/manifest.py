{
    'name': 'Tours',
    'category': 'Hidden',
    'version': '0.1',
    'depends': ['web'],
    'auto_install': True,
    'license': 'LGPL-3',
}
