"""Running the server: the command line, the pre-forked workers, the doctor, the owner's view of
users.

May import anything below it: `http` (the app factory), `login`, `wechat`, `storage` and the
base modules. Nothing imports from here but `__main__`.
"""
