-- description: every order belongs to a customer of the customers mart
select orders.order_id
from {{ ref('orders') }} as orders
left join {{ ref('customers') }} as customers
    on orders.customer_id = customers.customer_id
where customers.customer_id is null
