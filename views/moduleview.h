#pragma once

#include <QWidget>

#include <memory>

class QLabel;
class QLineEdit;
class QSortFilterProxyModel;
class QTreeView;

namespace ckpt {

struct Document;
class ModuleTreeModel;

// The state dict as its module hierarchy, with elements and bytes summed per module; a filter
// that keeps the modules on the way to each match; sorting by name (natural order), size or count
// from the header (file order until a header is clicked).
class ModuleView : public QWidget {
    Q_OBJECT
public:
    explicit ModuleView(QWidget *parent = nullptr);
    void setDocument(const std::shared_ptr<const Document> &doc);

    ModuleTreeModel *model() const { return m_model; }
    QSortFilterProxyModel *proxy() const { return m_proxy; }
    QTreeView *view() const { return m_view; }
    QLineEdit *filter() const { return m_filter; }

Q_SIGNALS:
    // A tensor row became current: its state-dict name.
    void tensorSelected(const QString &name);

private:
    ModuleTreeModel *m_model = nullptr;
    QSortFilterProxyModel *m_proxy = nullptr;
    QTreeView *m_view = nullptr;
    QLineEdit *m_filter = nullptr;
    QLabel *m_summary = nullptr;
};

} // namespace ckpt
